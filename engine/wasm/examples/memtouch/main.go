//go:build wasip1

// Command memtouch is an example compute job (the job ABI) with a large
// state: init allocates a table of MiB mebibytes (default 64) and fills it
// with a pseudo-random sequence; each step applies touches read-modify-
// writes at pseudo-random places (seeded from the job's random stream), and
// the job prints the table's checksum
// after steps steps. The benchmarks use it to measure checkpoints of a
// 64 MiB memory. Arguments: MiB steps touches [leak] (default 64 20
// 200000; "leak" keeps a file open across steps, which fails the job).
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o memtouch.wasm .
package main

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
)

var leaked *os.File

var (
	table                []uint64
	steps, touches, done        = 20, 200000, 0
	x                    uint64 = 0x9e3779b97f4a7c15
)

func arg(i, def int) int {
	if len(os.Args) > i {
		if v, err := strconv.Atoi(os.Args[i]); err == nil && v > 0 {
			return v
		}
	}
	return def
}

func next() uint64 {
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	return x
}

//go:wasmexport init
func jobInit() {
	mib := arg(1, 64)
	steps, touches = arg(2, steps), arg(3, touches)
	if len(os.Args) > 4 && os.Args[4] == "leak" {
		// Hold a file open across steps: the runtime fails the job.
		leaked, _ = os.Create("/out/leak")
	}
	table = make([]uint64, mib<<17)
	for i := range table {
		table[i] = next()
	}
}

//go:wasmexport step
func jobStep() int32 {
	// Each step draws from the job's random stream (its offset is state).
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic(err)
	}
	x ^= binary.LittleEndian.Uint64(r[:]) | 1
	n := uint64(len(table))
	for i := 0; i < touches; i++ {
		j := next() % n
		table[j] = table[j]*6364136223846793005 + 1442695040888963407
	}
	done++
	if done < steps {
		return 1
	}
	var sum uint64
	for _, v := range table {
		sum = sum*31 + v
	}
	fmt.Printf("memtouch %d MiB %d steps checksum %016x\n", len(table)>>17, done, sum)
	return 0
}

func main() {}
