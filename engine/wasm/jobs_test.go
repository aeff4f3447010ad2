package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"image/png"
	"reflect"
	"strings"
	"testing"
)

const text = `The quick brown fox jumps over the lazy dog.
The dog sleeps; the fox runs over the hill and the dog wakes.
A fox, a dog and the hill: the end of the story of the fox.
`

func outputs(r *Result) map[string][]byte {
	m := map[string][]byte{}
	for _, b := range r.Outputs {
		m[b.Name] = b.Data
	}
	return m
}

func TestExamplesSameOnInterpreterAndCompiler(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		job   Job
		check func(t *testing.T, r *Result)
	}{
		{"raytrace", Job{Args: []string{"48", "32", "5"}, Gas: 1 << 40, CheckpointEvery: 2}, func(t *testing.T, r *Result) {
			if got := string(outputs(r)["stdout"]); got != "rendered /out/render.png 48x32\n" {
				t.Fatalf("stdout %q", got)
			}
			img, err := png.Decode(bytes.NewReader(outputs(r)["out/render.png"]))
			if err != nil {
				t.Fatalf("out/render.png is not a PNG: %v", err)
			}
			if b := img.Bounds(); b.Dx() != 48 || b.Dy() != 32 {
				t.Fatalf("image %v, want 48x32", b)
			}
			// The sky at the top left is a blend of white and blue.
			if r, g, b, _ := img.At(0, 0).RGBA(); !(b > r && b > g) {
				t.Fatalf("top-left pixel %d,%d,%d is not sky", r>>8, g>>8, b>>8)
			}
		}},
		{"ngram", Job{Args: []string{"3", "40"}, Inputs: []Blob{{Name: "corpus.txt", Data: []byte(text)}}, Gas: 1 << 40, CheckpointEvery: 1}, func(t *testing.T, r *Result) {
			out := outputs(r)["stdout"]
			want := "tokens 37 distinct 17 bigrams 30\nword\t10\tthe\nword\t4\tdog\nword\t4\tfox\nbigram\t2\tand the\n"
			if !strings.HasPrefix(string(out), want) {
				t.Fatalf("stdout:\n%s\nwant prefix:\n%s", out, want)
			}
			if !strings.Contains(string(out), "bigram\t2\tover the\n") {
				t.Fatalf("stdout lacks the top bigram:\n%s", out)
			}
		}},
		{"memtouch", Job{Args: []string{"2", "3", "1000"}, Gas: 1 << 40, CheckpointEvery: 1}, func(t *testing.T, r *Result) {
			out := outputs(r)["stdout"]
			if !strings.HasPrefix(string(out), "memtouch 2 MiB 3 steps checksum ") {
				t.Fatalf("stdout: %q", out)
			}
		}},
		{"echo", Job{Args: []string{"a b", "c"}, Stdin: []byte("in!"), Inputs: []Blob{{Name: "f.txt", Data: []byte("data")}}, Gas: 1 << 40}, func(t *testing.T, r *Result) {
			out := outputs(r)["stdout"]
			if got := string(outputs(r)["out/echo.txt"]); got != "written by echo" {
				t.Errorf("out/echo.txt: %q", got)
			}
			for _, want := range []string{
				`args [job a b c]`, `env []`, `stdin "in!"`, `file f.txt "data" <nil>`, `mode=-rw------- mtime=1767225600000000000`,
				`create in /in: true`, `write /out: <nil>`, `host file: true`,
			} {
				if !strings.Contains(string(out), want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wasm := example(t, c.name)
			var results [2]*Result
			for i, interp := range []bool{false, true} {
				m := compile(t, interp, wasm)
				r, err := m.Run(ctx, c.job)
				if err != nil {
					t.Fatal(err)
				}
				if r.Failure != nil {
					t.Fatalf("interpreter=%v: %v\nstderr: %s", interp, r.Failure, outputs(r)["stderr"])
				}
				results[i] = r
			}
			a, b := results[0], results[1]
			if a.GasUsed != b.GasUsed || a.Steps != b.Steps {
				t.Fatalf("compiler used %d gas in %d steps, interpreter %d in %d", a.GasUsed, a.Steps, b.GasUsed, b.Steps)
			}
			if !reflect.DeepEqual(a.Checkpoints, b.Checkpoints) {
				t.Fatalf("checkpoints differ:\ncompiler    %v\ninterpreter %v", a.Checkpoints, b.Checkpoints)
			}
			if !reflect.DeepEqual(a.Outputs, b.Outputs) {
				t.Fatalf("outputs differ")
			}
			if len(a.Checkpoints) < 2 || a.GasUsed == 0 {
				t.Fatalf("%d checkpoints, %d gas", len(a.Checkpoints), a.GasUsed)
			}
			t.Logf("%s: %d steps, %d gas, %d checkpoints, stdout %d bytes", c.name, a.Steps, a.GasUsed, len(a.Checkpoints), len(outputs(a)["stdout"]))
			c.check(t, a)
			// A second run on the same engine repeats the first exactly.
			r, err := compile(t, false, wasm).Run(ctx, c.job)
			if err != nil || !reflect.DeepEqual(r, a) {
				t.Fatalf("a second run differs (err %v)", err)
			}
		})
	}
}

// A job stopped at a step, snapshotted and restored into a fresh instance
// continues with the same state hashes as the uninterrupted run, and a
// single replayed step gives the next checkpoint's hash.
func TestSnapshotRestoreResume(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"ngram", "raytrace", "ngram-stdin", "memtouch"} {
		t.Run(name, func(t *testing.T) {
			job := Job{Args: []string{"3", "40"}, Inputs: []Blob{{Name: "corpus.txt", Data: []byte(text)}}, Gas: 1 << 40, CheckpointEvery: 1}
			switch name {
			case "raytrace":
				job = Job{Args: []string{"24", "16", "3"}, Gas: 1 << 40, CheckpointEvery: 1}
			case "memtouch": // draws random bytes every step
				job = Job{Args: []string{"1", "4", "500"}, Gas: 1 << 40, CheckpointEvery: 1}
			case "ngram-stdin": // the stdin offset is state
				job = Job{Args: []string{"3", "40"}, Stdin: []byte(text), Gas: 1 << 40, CheckpointEvery: 1}
				name = "ngram"
			}
			m := compile(t, false, example(t, name))
			full, err := m.Run(ctx, job)
			if err != nil || full.Failure != nil {
				t.Fatalf("run: %v %v", err, full.Failure)
			}
			if full.Steps < 3 {
				t.Fatalf("%d steps, want at least 3", full.Steps)
			}
			in, err := m.Start(ctx, job)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2; i++ {
				if _, err := in.Step(ctx); err != nil {
					t.Fatal(err)
				}
			}
			st := in.Snapshot()
			if st.Hash() != full.Checkpoints[2].State || in.StateHash() != st.Hash() {
				t.Fatalf("snapshot after 2 steps hashes to %x, the run's checkpoint %x", st.Hash(), full.Checkpoints[2].State)
			}
			in.Close(ctx)

			// Replay the third step on the other engine, from the snapshot.
			other := compile(t, true, example(t, name))
			sr, err := other.ReplayStep(ctx, job, st)
			if err != nil || sr.Failure != nil {
				t.Fatalf("replay: %v %v", err, sr.Failure)
			}
			if sr.Post != full.Checkpoints[3].State || sr.GasUsed != full.Checkpoints[3].GasUsed {
				t.Fatalf("replayed step 3: %x (%d gas), the run's checkpoint %x (%d gas)", sr.Post, sr.GasUsed, full.Checkpoints[3].State, full.Checkpoints[3].GasUsed)
			}

			// Restore and run to the end: the same checkpoints, outputs, gas.
			in2, err := m.Restore(ctx, job, st)
			if err != nil {
				t.Fatal(err)
			}
			defer in2.Close(ctx)
			rest, err := in2.Run(ctx)
			if err != nil || rest.Failure != nil {
				t.Fatalf("resume: %v %v", err, rest.Failure)
			}
			if !reflect.DeepEqual(rest.Checkpoints, full.Checkpoints[2:]) {
				t.Fatalf("resumed checkpoints %v, want %v", rest.Checkpoints, full.Checkpoints[2:])
			}
			if rest.GasUsed != full.GasUsed || !reflect.DeepEqual(rest.Outputs, full.Outputs) {
				t.Fatalf("resumed run: %d gas, want %d; outputs equal %v", rest.GasUsed, full.GasUsed, reflect.DeepEqual(rest.Outputs, full.Outputs))
			}

			// A tampered pre-state replays to a different post-state.
			bad := *st
			bad.Memory = append([]byte(nil), st.Memory...)
			bad.Memory[len(bad.Memory)/2] ^= 1
			if bad.Hash() == st.Hash() {
				t.Fatal("a flipped memory bit does not change the state hash")
			}
		})
	}
}

func TestPageProof(t *testing.T) {
	ctx := context.Background()
	m := compile(t, false, example(t, "ngram"))
	job := Job{Args: []string{"3", "40"}, Stdin: []byte(text), Gas: 1 << 40}
	in, err := m.Start(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close(ctx)
	if _, err := in.Step(ctx); err != nil {
		t.Fatal(err)
	}
	st := in.Snapshot()
	root := st.Hash()
	pages := uint32(len(st.Memory) / PageSize)
	for _, i := range []uint32{0, 1, pages / 2, pages - 1} {
		p, err := st.ProvePage(i)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyPage(root, p); err != nil {
			t.Fatalf("page %d: %v", i, err)
		}
	}
	if _, err := st.ProvePage(pages); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("page past the end: %v", err)
	}
	p, _ := st.ProvePage(1)
	forged := []struct {
		name string
		edit func(p *PageProof)
		want string
	}{
		{"page byte flipped", func(p *PageProof) { p.Page[100] ^= 0xff }, "not the state's page"},
		{"other page's index", func(p *PageProof) { p.Index = 0 }, "does not match its path"},
		{"short page", func(p *PageProof) { p.Page = p.Page[:10] }, "page of 10 bytes"},
		{"gas in digest", func(p *PageProof) { p.Digest.GasUsed++ }, "does not hash to the state hash"},
		{"memory root", func(p *PageProof) { p.Digest.MemoryRoot[0] ^= 1 }, "does not hash to the state hash"},
		{"sibling", func(p *PageProof) { p.Path.Siblings[0][0] ^= 1 }, "not the state's page"},
	}
	for _, f := range forged {
		q := *p
		q.Page = append([]byte(nil), p.Page...)
		q.Path.Siblings = append([][32]byte(nil), p.Path.Siblings...)
		f.edit(&q)
		if err := VerifyPage(root, &q); err == nil || !strings.Contains(err.Error(), f.want) {
			t.Errorf("%s: %v, want %q", f.name, err, f.want)
		}
	}
	if err := VerifyPage(sha256.Sum256(nil), p); err == nil {
		t.Error("a proof verified against another state hash")
	}
}

// Everything a command can observe is a function of the job: the same job
// gives the same output; another seed changes only the random bytes and
// the map order (and so the gas); sleeping advances the gas clock.
func TestVirtualWASI(t *testing.T) {
	ctx := context.Background()
	m := compile(t, false, example(t, "echo"))
	run := func(job Job) string {
		t.Helper()
		r, err := m.Run(ctx, job)
		if err != nil || r.Failure != nil {
			t.Fatalf("%v %v", err, r.Failure)
		}
		return string(outputs(r)["stdout"])
	}
	job := Job{Gas: 1 << 40}
	a, b := run(job), run(job)
	if a != b {
		t.Fatalf("two runs differ:\n%s\n%s", a, b)
	}
	job2 := job
	job2.Seed[0] = 1
	c := run(job2)
	line := func(s, prefix string) string {
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		return ""
	}
	if line(a, "rand ") == line(c, "rand ") {
		t.Fatalf("another seed gave the same random bytes: %s", line(a, "rand "))
	}
	// The clock starts at FixedWalltime and advances with the gas used.
	if !strings.HasPrefix(line(a, "now "), "now 17672256000") {
		t.Fatalf("clock: %q", line(a, "now "))
	}
	job3 := job
	job3.Args = []string{"sleep"}
	d := run(job3)
	if line(d, "now ") <= line(a, "now ") {
		t.Fatalf("sleeping did not advance the clock: %q then %q", line(a, "now "), line(d, "now "))
	}
	// A failing exit is a deterministic failure.
	job4 := job
	job4.Args = []string{"exit"}
	r, err := m.Run(ctx, job4)
	if err != nil || r.Failure == nil || r.Failure.Reason != "exit code 3" {
		t.Fatalf("exit 3: %v %+v", err, r.Failure)
	}
}

// A job has no network: Go's net package on wasip1 links no socket
// import, and dialing fails inside the job.
func TestNoNetwork(t *testing.T) {
	r, err := compile(t, false, example(t, "echo")).Run(context.Background(), Job{Args: []string{"net"}, Gas: 1 << 40})
	if err != nil || r.Failure != nil {
		t.Fatalf("%v %v", err, r.Failure)
	}
	if out := string(outputs(r)["stdout"]); !strings.Contains(out, "dial: dial tcp 127.0.0.1:80: ") {
		t.Fatalf("stdout:\n%s", out)
	}
}
