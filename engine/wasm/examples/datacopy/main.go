//go:build wasip1

// Command datacopy is the exfiltration attempt compute-to-data must stop:
// a WASI command that copies every file under /data (recursively) to
// /out/<same path, slashes as "_"> and its whole content to stdout. A
// dataset's output cap makes it fail ("output over cap") with nothing
// delivered.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -o datacopy.wasm .
package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	n := 0
	err := filepath.WalkDir("/data", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.ReplaceAll(strings.TrimPrefix(p, "/data/"), "/", "_")
		if err := os.WriteFile("/out/"+name, b, 0o644); err != nil {
			return err
		}
		os.Stdout.Write(b)
		n++
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "copied %d files\n", n)
}
