//go:build wasip1

// Command echo is a plain WASI command used by the runtime's tests: it
// prints what a job can observe — arguments, environment, stdin, the input
// files, the clock, random bytes — so a test can check each is a function
// of the job alone. With the argument "sleep" it sleeps first; with "exit"
// it exits with code 3; with "net" it tries to dial.
package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"time"
)

func main() {
	for _, a := range os.Args[1:] {
		switch a {
		case "sleep":
			time.Sleep(10 * time.Millisecond)
		case "exit":
			os.Exit(3)
		case "net":
			_, err := net.Dial("tcp", "127.0.0.1:80")
			fmt.Println("dial:", err)
		}
	}
	fmt.Println("args", os.Args)
	env := os.Environ()
	sort.Strings(env)
	fmt.Println("env", env)
	in, _ := io.ReadAll(os.Stdin)
	fmt.Printf("stdin %q\n", in)
	ents, err := os.ReadDir("/in")
	fmt.Println("readdir err", err)
	for _, e := range ents {
		b, err := os.ReadFile("/in/" + e.Name())
		info, _ := e.Info()
		fmt.Printf("file %s %q %v mode=%v mtime=%d\n", e.Name(), b, err, info.Mode(), info.ModTime().UnixNano())
	}
	_, err = os.Create("/in/x")
	fmt.Println("create in /in:", err != nil)
	err = os.WriteFile("/out/echo.txt", []byte("written by echo"), 0o644)
	fmt.Println("write /out:", err)
	_, err = os.ReadFile("/etc/passwd")
	fmt.Println("host file:", err != nil)
	fmt.Println("now", time.Now().UnixNano())
	r := make([]byte, 8)
	rand.Read(r)
	fmt.Printf("rand %x\n", r)
	m := map[int]int{}
	for i := 0; i < 8; i++ {
		m[i] = i
	}
	order := []int{}
	for k := range m {
		order = append(order, k)
	}
	fmt.Println("map order", order)
}
