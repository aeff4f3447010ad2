package e2e

import (
	"testing"

	// The subprocess tests run a binary built from ../cmd/agora, which is
	// cmd/agora/cli and what it imports: importing it here makes the test
	// cache see a change anywhere in that binary (it would otherwise
	// replay a pass of the old binary).
	_ "github.com/agoranet/agora/cmd/agora/cli"
	"github.com/agoranet/agora/testutil/e2eutil"
)

// agoraBin is the agora binary, built once for the subprocess tests.
var agoraBin string

func TestMain(m *testing.M) { e2eutil.Main(m, &agoraBin) }

// The helpers this package shares with e2e/market live in
// testutil/e2eutil; these are the short names the tests here call them by.
var (
	run         = e2eutil.Run
	runFail     = e2eutil.RunFail
	runJSON     = e2eutil.RunJSON
	startAgora  = e2eutil.StartAgora
	waitServing = e2eutil.WaitServing
	quietLog    = e2eutil.QuietLog
	getJSON     = e2eutil.GetJSON
	fetchJSON   = e2eutil.FetchJSON
)

type proc = e2eutil.Proc
