package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/demomodel"
	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
	pdata "github.com/agoranet/agora/protocol/data"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

// errorLines are the lines of a command's output that report its failure.
func errorLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.ToLower(l), "error:") {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestUpFirstRunAndItsHome drives `agora up` as a new user does: a first run
// on a busy port fails naming the flag and writes nothing; one failing after
// it created the network removes it; the rerun with a free port comes up and
// says its keys are unencrypted. Against the running network: a second
// daemon on the home is told who holds it, `keys list` says where the keys
// are, and the OpenAI SDK's models.retrieve works on the gateway and the
// provider. Every failure prints one "Error: " line.
func TestUpFirstRunAndItsHome(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess agora up test")
	}
	home := filepath.Join(t.TempDir(), "home")
	ports := testnet.FreePorts(t, 6)
	api := fmt.Sprintf("127.0.0.1:%d", ports[0])
	rpc := fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	gwAddr := fmt.Sprintf("127.0.0.1:%d", ports[3])
	provAddr := fmt.Sprintf("127.0.0.1:%d", ports[4])
	upArgs := func(rpcLaddr string, extra ...string) []string {
		return append([]string{"up", "--home", home, "--log-level", "warn", "--consensus.timeout_commit", "200ms",
			"--api.laddr", api, "--rpc.laddr", rpcLaddr, "--p2p.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[2]),
			"--gateway.laddr", gwAddr, "--provider.laddr", provAddr}, extra...)
	}
	gone := func(when string) {
		t.Helper()
		if _, err := os.Stat(home); !os.IsNotExist(err) {
			t.Fatalf("%s: the home is still there (%v)", when, err)
		}
	}

	// A busy port: the one line says which flag, and nothing is written.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out := runFail(t, upArgs("tcp://"+busy.Addr().String())...)
	busy.Close()
	if want := "Error: " + busy.Addr().String() + " is busy (--rpc.laddr): "; !strings.HasPrefix(out, want) || len(errorLines(out)) != 1 {
		t.Fatalf("up on a busy port:\n%s\nwant one line starting %q", out, want)
	}
	gone("after a busy port")

	// A first run failing once the network exists (no such model) removes it.
	out = runFail(t, upArgs(rpc, "--model", filepath.Join(t.TempDir(), "missing.gguf"))...)
	if !strings.Contains(out, "The first run did not come up: removed what it wrote to "+home) ||
		len(errorLines(out)) != 1 || !strings.HasPrefix(errorLines(out)[0], "Error: ") || !strings.Contains(errorLines(out)[0], "missing.gguf") {
		t.Fatalf("up with a missing model:\n%s", out)
	}
	gone("after a failed first run")

	// The rerun comes up on the ports it was given.
	p := startAgora(t, upArgs(rpc)...)
	if err := poll.Wait(120*time.Second, func() (bool, string) {
		out := p.Output()
		if len(errorLines(out)) > 0 {
			t.Fatalf("agora up did not come up:\n%s", out)
		}
		return strings.Contains(out, "Press Ctrl-C"), ""
	}); err != nil {
		t.Fatalf("agora up did not come up: %v\n%s", err, p.Output())
	}
	banner := p.Output()
	for _, want := range []string{"Agora is up", "(stored UNENCRYPTED in " + filepath.Join(home, "keyring-test") + ": a local devnet's keys only)",
		"chain status:         curl http://" + api + "/v1/status",
		"compute-to-data:      agora data run 1 --module " + filepath.Join(home, "examples", "ngram.wasm") + " --args 10 --from demo --keyring test --home " + home + " --node " + rpc} {
		if !strings.Contains(banner, want) {
			t.Fatalf("banner lacks %q:\n%s", want, banner)
		}
	}
	c, err := client.New(rpc)
	if err != nil {
		t.Fatal(err)
	}
	waitServing(t, c, p, 2)
	pid := p.Cmd.Process.Pid

	// The banner's compute-to-data command works as printed: the word
	// count on the sample dataset, decrypted and checked against the chain.
	runDir := filepath.Join(t.TempDir(), "run")
	out = run(t, "data", "run", "1", "--module", filepath.Join(home, "examples", "ngram.wasm"), "--args", "10", "--from", "demo",
		"--keyring", "test", "--home", home, "--node", rpc, "--out", runDir)
	if !strings.Contains(out, "sealed results decrypted") || !strings.Contains(out, "matches the chain") {
		t.Fatalf("data run on the sample:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(runDir, "stdout")); err != nil || !strings.HasPrefix(string(b), "tokens ") || !strings.Contains(string(b), "word\t") {
		t.Fatalf("the sample's word count: %q %v", b, err)
	}
	// A raw download needs a grant: refused before, the exact bytes after.
	dl := filepath.Join(t.TempDir(), "sample.tar")
	dlArgs := []string{"data", "download", "1", "-O", dl, "--from", "demo", "--keyring", "test", "--home", home, "--node", rpc}
	if out := runFail(t, dlArgs...); !strings.Contains(out, "403") || !strings.Contains(out, "holds no download grant") {
		t.Fatalf("download without a grant:\n%s", out)
	}
	run(t, "data", "buy", "1", "--from", "demo", "--keyring", "test", "--home", home, "--node", rpc)
	if out := run(t, dlArgs...); !strings.Contains(out, "every chunk checked against root") {
		t.Fatalf("download:\n%s", out)
	}
	var sample bytes.Buffer
	if err := pdata.TarDir(&sample, filepath.Join(home, "sample-texts")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(dl); err != nil || !bytes.Equal(b, sample.Bytes()) {
		t.Fatalf("downloaded %d bytes (%v), the sample's tar is %d", len(b), err, sample.Len())
	}

	// A second daemon on the home held by up names the holder.
	gwDir := filepath.Join(home, "data", "gateway")
	out = runFail(t, "gateway", "start", "--home", home, "--keyring", "test", "--key", "demo", "--node", rpc,
		"--listen", fmt.Sprintf("127.0.0.1:%d", ports[5]))
	if want := fmt.Sprintf("Error: open gateway store %s: agora is already running on %s (pid %d): stop it first, or use another --home\n", gwDir, gwDir, pid); !strings.HasSuffix(out, want) || len(errorLines(out)) != 1 {
		t.Fatalf("gateway start on up's home:\n%s\nwant it to end %q", out, want)
	}
	out = runFail(t, "start", "--home", home)
	if want := fmt.Sprintf("Error: agora is already running on %s (pid %d): stop it first, or use another --home\n", home, pid); out != want {
		t.Fatalf("start on up's home: %q, want %q", out, want)
	}

	// keys list without --keyring says where up's keys are.
	out = run(t, "keys", "list", "--home", home)
	if want := "; the test keyring holds 3 (demo, provider, validator): agora keys list --keyring test --home " + home; !strings.Contains(out, want) {
		t.Fatalf("keys list: %q, want it to contain %q", out, want)
	}

	// models.retrieve through the official SDK, on the gateway and the provider.
	ctx := context.Background()
	gw := openai.NewClient(option.WithBaseURL("http://"+gwAddr+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	poll.Until(t, 30*time.Second, "the gateway to list agora-demo alone", func() (bool, string) {
		list, err := gw.Models.List(ctx)
		if err != nil {
			return false, err.Error()
		}
		return len(list.Data) == 1 && list.Data[0].ID == "agora-demo", fmt.Sprintf("gateway models: %+v", list.Data)
	})
	m, err := gw.Models.Get(ctx, "agora-demo")
	if err != nil || m.ID != "agora-demo" || m.Object != "model" || m.OwnedBy != "agora" {
		t.Fatalf("gateway models.retrieve: %+v %v", m, err)
	}
	var apiErr *openai.Error
	if _, err := gw.Models.Get(ctx, "org/no-such-model"); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Code != "model_not_found" ||
		!strings.Contains(apiErr.Message, `"org/no-such-model" does not exist`) {
		t.Fatalf("gateway models.retrieve of an unknown model: %v", err)
	}
	prov := openai.NewClient(option.WithBaseURL("http://"+provAddr+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	var provKey struct{ Address string }
	runJSON(t, &provKey, "keys", "show", "provider", "--keyring", "test", "--home", home)
	if m, err := prov.Models.Get(ctx, "agora-demo"); err != nil || m.ID != "agora-demo" || m.OwnedBy != provKey.Address {
		t.Fatalf("provider models.retrieve: %+v %v", m, err)
	}
	if _, err := prov.Models.Get(ctx, "nope"); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Code != "model_not_found" {
		t.Fatalf("provider models.retrieve of an unknown model: %v", err)
	}

	// The model up wrote is the embedded demo model (trained, not random),
	// and the gateway's seeded answer is the engine's on that file.
	written, err := os.ReadFile(filepath.Join(home, "models", "agora-demo.gguf"))
	if err != nil || !bytes.Equal(written, demomodel.GGUF) {
		t.Fatalf("up wrote a model of %d bytes (%v), want the embedded demo model (%d bytes)", len(written), err, len(demomodel.GGUF))
	}
	f, err := gguf.Parse(demomodel.GGUF)
	if err != nil {
		t.Fatal(err)
	}
	dm, err := native.FromFile(f, native.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	chat, err := native.ChatTemplateOf(f, tok)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := chat.Prompt(tok, []native.Message{{Role: "user", Content: "Hello!"}})
	if err != nil {
		t.Fatal(err)
	}
	want, err := dm.Generate(tok, ids, native.SampleParams{Temperature: 0.8, Seed: 1, MaxTokens: 64}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gw.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "agora-demo", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello!")},
		MaxTokens: openai.Int(64), Temperature: openai.Float(0.8), Seed: openai.Int(1)})
	if err != nil || len(res.Choices) != 1 || res.Choices[0].Message.Content != want.Text || want.Text == "" {
		t.Fatalf("the demo model's answer through the gateway: %+v %v; the engine's: %q", res, err, want.Text)
	}

	p.Cmd.Process.Signal(syscall.SIGTERM)
	if err := p.Cmd.Wait(); err != nil {
		t.Fatalf("up after SIGTERM: %v\n%s", err, p.Output())
	}
	// The explorer followed the chain all along without complaining.
	if strings.Contains(p.Output(), "could not find results") {
		t.Fatalf("the explorer warned during normal running:\n%s", p.Output())
	}
}
