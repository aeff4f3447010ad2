// Command agora is the single binary of the Agora network.
package main

import (
	"os"

	"github.com/agoranet/agora/cmd/agora/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
