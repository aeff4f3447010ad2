package wasm

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// dataset is a small tree: path order is a.txt, a/y.txt, b/c/x.txt.
var dataset = []Blob{
	{Name: "b/c/x.txt", Data: []byte("the fox runs over the hill\n")},
	{Name: "a.txt", Data: []byte(text)},
	{Name: "a/y.txt", Data: []byte("a dog and a fox\n")},
}

// ngram reads a dataset under /data recursively in path order: the same
// counts as the same files given under /in in that order.
func TestNgramReadsData(t *testing.T) {
	ctx := context.Background()
	m := compile(t, false, example(t, "ngram"))
	viaData, err := m.Run(ctx, Job{Args: []string{"5", "64"}, Data: dataset, Gas: 1 << 40, CheckpointEvery: 1})
	if err != nil || viaData.Failure != nil {
		t.Fatalf("%v %v", err, viaData.Failure)
	}
	viaIn, err := m.Run(ctx, Job{Args: []string{"5", "64"}, Gas: 1 << 40, CheckpointEvery: 1, Inputs: []Blob{
		{Name: "0", Data: dataset[1].Data}, {Name: "1", Data: dataset[2].Data}, {Name: "2", Data: dataset[0].Data},
	}})
	if err != nil || viaIn.Failure != nil {
		t.Fatalf("%v %v", err, viaIn.Failure)
	}
	a, b := outputs(viaData)["stdout"], outputs(viaIn)["stdout"]
	if !bytes.Equal(a, b) || !strings.HasPrefix(string(a), "tokens 48 ") {
		t.Fatalf("via /data:\n%s\nvia /in:\n%s", a, b)
	}
	// Without /data, ngram still reads /in (checked above) or stdin.
	viaStdin, err := m.Run(ctx, Job{Args: []string{"5", "64"}, Stdin: []byte(text), Gas: 1 << 40})
	if err != nil || viaStdin.Failure != nil || !strings.HasPrefix(string(outputs(viaStdin)["stdout"]), "tokens 37 ") {
		t.Fatalf("stdin: %v %v %q", err, viaStdin.Failure, outputs(viaStdin)["stdout"])
	}
}

// The output cap stops a module copying /data out: the job fails with
// OutputOverCap; under a cap large enough, the copy is the data.
func TestOutputCap(t *testing.T) {
	ctx := context.Background()
	m := compile(t, false, example(t, "datacopy"))
	var total uint64
	for _, d := range dataset {
		total += uint64(len(d.Data))
	}
	r, err := m.Run(ctx, Job{Data: dataset, Gas: 1 << 40, OutputCap: 1 << 20})
	if err != nil || r.Failure != nil {
		t.Fatalf("%v %v", err, r.Failure)
	}
	outs := outputs(r)
	if got := outs["out/b_c_x.txt"]; !bytes.Equal(got, dataset[0].Data) {
		t.Fatalf("out/b_c_x.txt = %q", got)
	}
	if size := ResultsSize(r.Outputs); size <= 2*total {
		t.Fatalf("results size %d for %d bytes of data copied twice", size, total)
	}
	for _, c := range []uint64{total, ResultsSize(r.Outputs) - 1} {
		r, err := m.Run(ctx, Job{Data: dataset, Gas: 1 << 40, OutputCap: c})
		if err != nil {
			t.Fatal(err)
		}
		var f *Failure
		if r.Failure == nil || !errors.As(error(r.Failure), &f) || f.Reason != OutputOverCap {
			t.Fatalf("cap %d: failure %v", c, r.Failure)
		}
	}
	// Exactly at the cap passes.
	if r2, err := m.Run(ctx, Job{Data: dataset, Gas: 1 << 40, OutputCap: ResultsSize(r.Outputs)}); err != nil || r2.Failure != nil {
		t.Fatalf("at the cap: %v %v", err, r2.Failure)
	}
}

// /data is read-only and its names are checked.
func TestDataMount(t *testing.T) {
	ctx := context.Background()
	m := compile(t, false, example(t, "echo"))
	for _, tc := range []struct {
		name string
		data []Blob
		want string
	}{
		{"dot dot", []Blob{{Name: "../x"}}, "want a relative"},
		{"absolute", []Blob{{Name: "/x"}}, "want a relative"},
		{"twice", []Blob{{Name: "x"}, {Name: "x"}}, "given twice"},
		{"file and directory", []Blob{{Name: "x"}, {Name: "x/y"}}, "also a directory"},
	} {
		if _, err := m.Run(ctx, Job{Data: tc.data, Gas: 1 << 40}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// datacopy cannot write into /data: a command that tries fails.
	fs := newTreeFS(dataset)
	if _, errno := fs.OpenFile("a.txt", 1 /* O_WRONLY */, 0); errno == 0 {
		t.Fatal("opened a /data file for writing")
	}
	if st, errno := fs.Stat("b/c"); errno != 0 || !st.Mode.IsDir() {
		t.Fatalf("b/c: %v %v", st.Mode, errno)
	}
	d, _ := fs.OpenFile("/", 0, 0)
	ents, _ := d.Readdir(-1)
	if len(ents) != 3 || ents[0].Name != "a" || ents[1].Name != "a.txt" || ents[2].Name != "b" || !ents[0].Type.IsDir() || ents[1].Type.IsDir() {
		t.Fatalf("root entries %+v", ents)
	}
}
