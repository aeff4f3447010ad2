//go:build wasip1

// Command ngram is an example compute job (the job ABI) of batch data
// processing: it counts words and word bigrams of a text corpus, a chunk of
// lines per step, and prints the most frequent of each to stdout when done.
// The corpus is, for a compute-to-data run (/data exists), every file under
// /data, recursively, in path order; else every file under /in (in name
// order), or stdin when /in is empty. Arguments: top-k chunk-bytes
// (default 20 65536).
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o ngram.wasm .
package main

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

var (
	corpus      []byte
	pos         int
	topK, chunk = 20, 64 << 10
	words       = map[string]int{}
	bigrams     = map[string]int{}
	prev        string
	total       int
)

func arg(i, def int) int {
	if len(os.Args) > i {
		if v, err := strconv.Atoi(os.Args[i]); err == nil && v > 0 {
			return v
		}
	}
	return def
}

//go:wasmexport init
func jobInit() {
	topK, chunk = arg(1, topK), arg(2, chunk)
	var names []string
	if _, err := os.Stat("/data"); err == nil {
		err := filepath.WalkDir("/data", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				names = append(names, p)
			}
			return err
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	} else {
		names, _ = filepath.Glob("/in/*")
	}
	slices.Sort(names) // path order (the dataset tar's order)
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		corpus = append(corpus, b...)
		corpus = append(corpus, '\n')
	}
	if len(names) == 0 {
		corpus, _ = io.ReadAll(os.Stdin)
	}
}

func count(text []byte) {
	for _, f := range strings.FieldsFunc(string(text), func(r rune) bool { return !unicode.IsLetter(r) && r != '\'' }) {
		wd := strings.ToLower(f)
		// Brown corpus tokens carry tags (word/tag): keep the word.
		if i := strings.IndexByte(wd, '/'); i > 0 {
			wd = wd[:i]
		}
		words[wd]++
		if prev != "" {
			bigrams[prev+" "+wd]++
		}
		prev = wd
		total++
	}
}

//go:wasmexport step
func jobStep() int32 {
	end := min(pos+chunk, len(corpus))
	// End the chunk at a line break so no word is split.
	for end < len(corpus) && corpus[end] != '\n' {
		end++
	}
	count(corpus[pos:end])
	pos = end
	if pos < len(corpus) {
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "tokens %d distinct %d bigrams %d\n", total, len(words), len(bigrams))
	for _, kv := range []struct {
		name string
		m    map[string]int
	}{{"word", words}, {"bigram", bigrams}} {
		keys := make([]string, 0, len(kv.m))
		for k := range kv.m {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if kv.m[a] != kv.m[b] {
				return kv.m[b] - kv.m[a]
			}
			return strings.Compare(a, b)
		})
		for _, k := range keys[:min(topK, len(keys))] {
			fmt.Fprintf(out, "%s\t%d\t%s\n", kv.name, kv.m[k], k)
		}
	}
	out.Flush()
	return 0
}

func main() {}
