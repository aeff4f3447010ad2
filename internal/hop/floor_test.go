package hop

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkPathFloor measures, on one connection, what the request path's
// shape costs on this machine before any of Agora's work: a trivial answer
// direct, through one and two forwarding servers (this package's client on
// each hop, as the gateway and the provider use it), and through two with
// the inner one writing and fdatasyncing 1 KiB before answering, as a
// provider must. The figure is the p50 per request (p50-µs); compare with
// `agora bench gateway --conns 1` (BENCHMARKS.md).
func BenchmarkPathFloor(b *testing.B) {
	answer := bytes.Repeat([]byte("x"), 600)
	backend := floorServer(b, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	})
	hc := New(8, nil)
	defer hc.CloseIdle()
	one := floorServer(b, floorForward(b, hc, backend, nil))
	two := floorServer(b, floorForward(b, hc, one, nil))
	log := floorLog(b)
	synced := floorServer(b, floorForward(b, hc, backend, log))
	twoSynced := floorServer(b, floorForward(b, hc, synced, nil))
	for _, c := range []struct{ name, url string }{
		{"direct", backend}, {"one-hop", one}, {"two-hops", two}, {"two-hops-inner-fdatasync", twoSynced},
	} {
		b.Run(c.name, func(b *testing.B) {
			client := &http.Client{}
			defer client.CloseIdleConnections()
			lats := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				resp, err := client.Post(c.url, "application/json", bytes.NewReader([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
				lats = append(lats, time.Since(t0))
			}
			slices.Sort(lats)
			b.ReportMetric(float64(lats[len(lats)/2].Nanoseconds())/1e3, "p50-µs")
		})
	}
}

func floorServer(b *testing.B, h http.HandlerFunc) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// floorLog is a preallocated, written file: each request overwrites the
// next 4 KiB block and fdatasyncs, as the stores' log does.
type floorLogFile struct {
	f   *os.File
	off int64
}

func floorLog(b *testing.B) *floorLogFile {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "log"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	if _, err := f.Write(make([]byte, 16<<20)); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	return &floorLogFile{f: f}
}

func (l *floorLogFile) append(p []byte) error {
	if _, err := l.f.WriteAt(p, l.off); err != nil {
		return err
	}
	l.off = (l.off + 4096) % (16 << 20)
	return unix.Fdatasync(int(l.f.Fd()))
}

func floorForward(b *testing.B, hc *Client, next string, log *floorLogFile) http.HandlerFunc {
	record := make([]byte, 1024)
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequest(http.MethodPost, next, bytes.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		rb, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if log != nil { // one request at a time: the benchmark's client is sequential
			if err := log.append(record); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(rb)
	}
}
