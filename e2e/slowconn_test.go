package e2e

import (
	"bufio"
	"context"
	"fmt"
	"github.com/agoranet/agora/testutil/poll"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/testutil/testnet"
)

// healthz returns a /healthz answer.
func healthz(url string) (int, string) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url + "/healthz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// slowFlood opens up to n connections to addr, each sending the headers of
// a POST announcing a 1 MB body and then one byte of it, as the attack that
// halted the chain did. It returns the connections that opened.
func slowFlood(addr string, n int) []net.Conn {
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	work := make(chan struct{}, n)
	for i := 0; i < n; i++ {
		work <- struct{}{}
	}
	close(work)
	d := net.Dialer{Timeout: 2 * time.Second}
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				c, err := d.Dial("tcp", addr)
				if err != nil {
					continue // the accept queue is full: the kernel drops the SYN
				}
				c.SetWriteDeadline(time.Now().Add(2 * time.Second))
				if _, err := fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", addr, 1<<20); err != nil {
					c.Close()
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return conns
}

// openFDs counts the descriptors process pid has open.
func openFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// TestSlowBodyFloodUp floods a running `agora up`, held to 1024 file
// descriptors, with thousands of connections that each send one byte of a
// 1 MB body to the gateway and the node API. Consensus must keep committing
// during and after the flood, and a chat completion must work after it.
// (Before the servers were capped, the process ran out of descriptors and
// CometBFT halted with "CONSENSUS FAILURE!!! ... too many open files".)
func TestSlowBodyFloodUp(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess flood test")
	}
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc to count the process's descriptors")
	}
	const childLimit = 1024
	// This process holds the flood's client ends: as many as its own
	// limit allows, at most 2,000 per port.
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	perPort := min(2000, (int(rl.Cur)-256)/2)
	if perPort < childLimit {
		t.Skipf("this process may open only %d descriptors: too few to flood a %d-descriptor process", rl.Cur, childLimit)
	}

	home := t.TempDir()
	ports := testnet.FreePorts(t, 5)
	api := fmt.Sprintf("127.0.0.1:%d", ports[0])
	rpc := fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	gw := fmt.Sprintf("127.0.0.1:%d", ports[3])
	args := []string{"up", "--home", home, "--consensus.timeout_commit", "300ms",
		"--api.laddr", api, "--rpc.laddr", rpc, "--p2p.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[2]),
		"--gateway.laddr", gw, "--provider.laddr", fmt.Sprintf("127.0.0.1:%d", ports[4])}
	// `ulimit -n` sets the soft and the hard limit: the child cannot raise it.
	up := exec.Command("sh", append([]string{"-c", `ulimit -n ` + strconv.Itoa(childLimit) + ` && exec "$0" "$@"`, agoraBin}, args...)...)
	stdout, err := up.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(home, "up.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	up.Stderr = logf
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- up.Wait() }()
	t.Cleanup(func() {
		if up.ProcessState == nil {
			up.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				up.Process.Kill()
				<-exited
			}
		}
	})
	upLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(strings.TrimSpace(sc.Text()), "Press Ctrl-C") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case err := <-exited:
		t.Fatalf("agora up exited: %v\n%s", err, upLog())
	case <-time.After(120 * time.Second):
		t.Fatalf("agora up did not come up in 120 s\n%s", upLog())
	}
	pid := up.Process.Pid
	limits, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	for _, line := range strings.Split(string(limits), "\n") {
		if f := strings.Fields(line); strings.HasPrefix(line, "Max open files") && (len(f) < 5 || f[3] != strconv.Itoa(childLimit) || f[4] != strconv.Itoa(childLimit)) {
			t.Fatalf("the child's descriptor limit is not %d: %q", childLimit, line)
		}
	}

	c, err := client.New(rpc)
	if err != nil {
		t.Fatal(err)
	}
	height := func() int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		st, err := c.Status(ctx)
		if err != nil {
			return -1
		}
		return st.SyncInfo.LatestBlockHeight
	}
	chat := func() (bool, string) {
		hc := &http.Client{Timeout: 20 * time.Second}
		resp, err := hc.Post("http://"+gw+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"agora-demo","messages":[{"role":"user","content":"Hello after the flood"}],"max_tokens":8}`))
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && resp.Header.Get(gateway.ReceiptIDHeader) != "", fmt.Sprintf("%d %s", resp.StatusCode, b)
	}
	if ok, last := chat(); !ok {
		t.Fatalf("chat before the flood: %s", last)
	}
	idleFDs := openFDs(pid)

	// The flood: the gateway's port and the node API's.
	start := time.Now()
	var flood []net.Conn
	var fwg sync.WaitGroup
	var fmu sync.Mutex
	for _, addr := range []string{gw, api} {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			cs := slowFlood(addr, perPort)
			fmu.Lock()
			flood = append(flood, cs...)
			fmu.Unlock()
		}()
	}
	fwg.Wait()
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	floodFDs := openFDs(pid)
	t.Logf("flood: %d slow-body connections open (of %d tried) in %s; agora up holds %d descriptors (idle: %d, limit %d)",
		len(flood), 2*perPort, time.Since(start).Round(time.Millisecond), floodFDs, idleFDs, childLimit)
	if len(flood) < childLimit {
		t.Fatalf("only %d flood connections opened: not enough to exhaust %d descriptors", len(flood), childLimit)
	}

	// Consensus keeps committing while the connections are held.
	h0 := height()
	poll.Until(t, 30*time.Second, "blocks during the flood", func() (bool, string) {
		h := height()
		return h0 > 0 && h >= h0+5, fmt.Sprintf("height %d, was %d at the flood's peak; fds %d", h, h0, openFDs(pid))
	})
	if n := openFDs(pid); n >= childLimit-64 {
		t.Fatalf("agora up holds %d descriptors during the flood, limit %d", n, childLimit)
	}
	for _, c := range flood {
		c.Close()
	}
	flood = nil

	// After it: blocks, a paid chat completion, and /healthz says ok.
	h1 := height()
	poll.Until(t, 30*time.Second, "blocks after the flood", func() (bool, string) {
		h := height()
		return h >= h1+3, fmt.Sprintf("height %d, was %d", h, h1)
	})
	poll.Until(t, 45*time.Second, "a chat completion after the flood", chat)
	for _, url := range []string{"http://" + api, "http://" + gw} {
		poll.Until(t, 30*time.Second, url+"/healthz ok", func() (bool, string) {
			code, body := healthz(url)
			return code == 200 && body == "ok\n", fmt.Sprintf("%d %q", code, body)
		})
	}
	if log := upLog(); strings.Contains(log, "CONSENSUS FAILURE") || strings.Contains(log, "too many open files") {
		t.Fatalf("agora up ran out of descriptors:\n%s", log)
	}
	t.Logf("flood test: %s in all", time.Since(start).Round(time.Millisecond))
}

// TestHealthReportsHaltedConsensus halts a 4-validator network (2 of 4
// stopped: no 2/3 majority) and checks that /healthz on a surviving node's
// API and on a gateway using it turns 503 and says why, then ok again when
// a validator comes back.
func TestHealthReportsHaltedConsensus(t *testing.T) {
	if testing.Short() {
		t.Skip("4-validator network")
	}
	nw := testnet.New(t, testnet.Options{Validators: 4, Accounts: 1, BlockTime: 300 * time.Millisecond})
	if err := nw.WaitHeight(0, 3, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	api := "http://" + nw.Configs[0].API.Laddr
	gw, err := gateway.New(gateway.Config{ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[0], Listen: "127.0.0.1:0",
		DataDir: filepath.Join(t.TempDir(), "gateway"), MaxBlockAge: 5 * time.Second}, quietLog(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Stop() })
	for _, url := range []string{api, gw.URL()} {
		if code, body := healthz(url); code != 200 || body != "ok\n" {
			t.Fatalf("%s/healthz while blocks are committed: %d %q", url, code, body)
		}
	}

	nw.Stop(2)
	nw.Stop(3)
	halted := nw.Height(0)
	// The node's maximum block age is its default, 10 block times but at
	// least 10 s; the gateway's is 5 s.
	for _, tc := range []struct{ url, setting string }{{api, "(health.max_block_age)"}, {gw.URL(), "(max_block_age)"}} {
		poll.Until(t, 40*time.Second, tc.url+"/healthz to report the stall", func() (bool, string) {
			code, body := healthz(tc.url)
			return code == http.StatusServiceUnavailable && strings.HasPrefix(body, "unhealthy: consensus stalled: last block ") &&
				strings.Contains(body, tc.setting), fmt.Sprintf("%d %q", code, body)
		})
	}
	code, body := healthz(api)
	if h := nw.Height(0); h > halted+1 || !strings.Contains(body, fmt.Sprintf("last block %d ", h)) {
		t.Fatalf("node at height %d (halted at %d) reports: %d %q", h, halted, code, body)
	}
	t.Logf("halted: %q", body)

	// A third validator back: 3 of 4 commit again, and both are healthy.
	nw.Start(2, 0)
	// Generous: the restarted validator must reconnect and catch up, which
	// took over a minute once on a loaded 2-core machine.
	if err := nw.WaitHeight(0, halted+2, 180*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{api, gw.URL()} {
		poll.Until(t, 20*time.Second, url+"/healthz ok again", func() (bool, string) {
			code, body := healthz(url)
			return code == 200 && body == "ok\n", fmt.Sprintf("%d %q", code, body)
		})
	}
}

// TestHealthReportsConsensusFailure makes CometBFT's consensus fail the way
// the flood did (its signing state cannot be saved: here a directory stands
// where the file is renamed to) and checks /healthz says so at once, not
// "ok" while the process keeps serving.
func TestHealthReportsConsensusFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("in-process node")
	}
	nw := testnet.New(t, testnet.Options{Validators: 1, BlockTime: 200 * time.Millisecond})
	if err := nw.WaitHeight(0, 3, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	api := "http://" + nw.Configs[0].API.Laddr
	if code, body := healthz(api); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz while blocks are committed: %d %q", code, body)
	}
	state := filepath.Join(nw.Homes[0], "data", "priv_validator_state.json")
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "/healthz to report the consensus failure", func() (bool, string) {
		code, body := healthz(api)
		return code == http.StatusServiceUnavailable && strings.HasPrefix(body, "unhealthy: consensus failed: rename ") &&
			strings.Contains(body, "priv_validator_state.json: "), fmt.Sprintf("%d %q", code, body)
	})
	_, body := healthz(api)
	t.Logf("after the failure: %q", body)
}
