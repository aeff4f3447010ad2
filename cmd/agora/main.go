// Command agora is the single binary of the Agora network.
package main

import (
	"fmt"
	"os"

	"github.com/agoranet/agora/internal/cli"
)

func main() {
	if err := cli.NewRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
