package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/agoranet/agora/explorer"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

// findChromium returns Debian's chromium (installed by .ci/run). Without it
// the test fails when AGORA_REQUIRE_BROWSER is set (as in CI) and skips
// otherwise.
func findChromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("AGORA_REQUIRE_BROWSER") != "" {
		t.Fatal("no chromium on PATH (apt-get install -y chromium)")
	}
	t.Skip("no chromium on PATH; set AGORA_REQUIRE_BROWSER=1 to make this a failure")
	return ""
}

// TestUpExplorer runs `agora up` on free ports, sends chat requests through
// its gateway, then drives headless Chromium over the explorer.
func TestUpExplorer(t *testing.T) {
	chrome := findChromium(t)
	home := t.TempDir()
	ports := testnet.FreePorts(t, 4)
	api := fmt.Sprintf("127.0.0.1:%d", ports[0])
	gw := fmt.Sprintf("http://127.0.0.1:%d", ports[3])
	args := []string{"up", "--home", home, "--providers", "2", "--epoch-length", "8", "--consensus.timeout_commit", "300ms",
		"--api.laddr", api, "--rpc.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[1]), "--p2p.laddr", fmt.Sprintf("tcp://127.0.0.1:%d", ports[2]),
		"--gateway.laddr", gw[len("http://"):], "--provider.laddr", fmt.Sprintf("127.0.0.1:%d", twoFreePorts(t))}
	up := exec.Command(agoraBin, args...)
	stdout, _ := up.StdoutPipe()
	logf, _ := os.Create(filepath.Join(home, "up.log"))
	defer logf.Close()
	up.Stderr = logf
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- up.Wait() }()
	defer func() {
		if up.ProcessState == nil {
			up.Process.Kill()
		}
	}()
	// The banner names the explorer once everything is up.
	banner := make(chan string, 1)
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(strings.TrimSpace(sc.Text()), "Press Ctrl-C") {
				banner <- all.String()
			}
		}
	}()
	var out string
	select {
	case out = <-banner:
	case err := <-exited:
		log, _ := os.ReadFile(filepath.Join(home, "up.log"))
		t.Fatalf("agora up exited: %v\n%s", err, log)
	case <-time.After(90 * time.Second):
		t.Fatal("agora up did not come up in 90 s")
	}
	explorerURL := "http://" + api + explorer.Prefix
	for _, want := range []string{"explorer:             " + explorerURL, "curl " + gw + "/v1/chat/completions", "audit worker",
		"compute-to-data:      agora data run 1 --module " + filepath.Join(home, "examples", "ngram.wasm")} {
		if !strings.Contains(out, want) {
			t.Fatalf("banner lacks %q:\n%s", want, out)
		}
	}

	shots := os.Getenv("AGORA_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(os.TempDir(), "agora-explorer-screenshots")
	}
	os.MkdirAll(shots, 0o755)
	t.Logf("screenshots in %s", shots)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.Flag("disable-background-networking", true), chromedp.WindowSize(1280, 1000),
		// Chromium takes long to start on a loaded 2-core CI machine (the default is 20 s).
		chromedp.WSURLReadTimeout(2*time.Minute))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 120*time.Second)
	defer cancel()

	text := func(sel string) string {
		t.Helper()
		var s string
		if err := chromedp.Run(ctx, chromedp.Text(sel, &s, chromedp.ByQuery)); err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// waitFor polls until the JS expression is true.
	waitFor := func(what, expr string) {
		t.Helper()
		if err := chromedp.Run(ctx, chromedp.Poll(expr, nil, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			var body string
			chromedp.Run(ctx, chromedp.Text("main", &body, chromedp.ByQuery))
			t.Fatalf("waiting for %s: %v\npage: %.1500s", what, err, body)
		}
	}
	shot := func(name string) {
		t.Helper()
		var png []byte
		if err := chromedp.Run(ctx, chromedp.CaptureScreenshot(&png)); err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mainHas := func(s string) string {
		return fmt.Sprintf(`(document.querySelector("main")?.innerText || "").includes(%q)`, s)
	}

	// Before any traffic the overview says so, and how to send a request.
	if err := chromedp.Run(ctx, chromedp.Navigate(explorerURL)); err != nil {
		t.Fatal(err)
	}
	waitFor("the empty state", mainHas("No requests served yet")+" && "+mainHas("/v1/chat/completions"))
	shot("empty")

	// A second `agora up` on the same home is refused and harms nothing.
	second, err := exec.Command(agoraBin, "up", "--home", home).CombinedOutput()
	if err == nil || !strings.Contains(string(second), "already running") {
		t.Fatalf("second agora up: %v\n%s", err, second)
	}

	// Three paid chat completions through the gateway.
	var receiptIDs []string
	var tokens uint64
	for i := 0; i < 3; i++ {
		resp, err := http.Post(gw+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"agora-demo","messages":[{"role":"user","content":"Hello number `+fmt.Sprint(i)+`"}],"max_tokens":8}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("chat %d: %d %s", i, resp.StatusCode, body)
		}
		receiptIDs = append(receiptIDs, resp.Header.Get("X-Agora-Receipt-Id"))
		var cc struct {
			Usage struct {
				Total uint64 `json:"total_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(body, &cc); err != nil || cc.Usage.Total == 0 {
			t.Fatalf("chat %d usage: %v %s", i, err, body)
		}
		tokens += cc.Usage.Total
	}
	if len(receiptIDs[0]) != 64 {
		t.Fatalf("no receipt id header: %q", receiptIDs[0])
	}

	// Wait for the providers' commitment to be indexed.
	var ov explorer.Overview
	poll.Until(t, 60*time.Second, "the explorer to show 3 committed requests", func() (bool, string) {
		err := fetchJSON("http://"+api+"/explorer/api/overview", &ov)
		return err == nil && ov.Totals.Requests >= 3, fmt.Sprintf("%+v (%v)", ov, err)
	})
	if ov.Totals.Requests != 3 || ov.Totals.Tokens != tokens || ov.Providers != 2 || ov.ActiveProviders != 2 {
		t.Fatalf("overview: %+v", ov.Totals)
	}
	var provs []explorer.ProviderRow
	if err := fetchJSON("http://"+api+"/explorer/api/providers", &provs); err != nil || len(provs) != 2 {
		t.Fatalf("providers: %v %v", provs, err)
	}
	// The gateway routes to the cheaper provider (the first); it served all three.
	busy := provs[0]
	if provs[1].Stats.Requests > busy.Stats.Requests {
		busy = provs[1]
	}
	if busy.Stats.Requests != 3 || busy.PriceInputPer1K != 10 {
		t.Fatalf("the cheaper provider did not serve the 3 requests: %+v", provs)
	}
	prov := busy.Address.String()
	committedEpoch := busy.Stats.LastEpoch
	var ep struct {
		Commitments []explorer.EpochCommitment `json:"commitments"`
	}
	if err := fetchJSON(fmt.Sprintf("http://%s/explorer/api/epoch/%d", api, committedEpoch), &ep); err != nil || len(ep.Commitments) != 1 {
		t.Fatalf("epoch %d: %+v %v", committedEpoch, ep, err)
	}
	root := ep.Commitments[0].Root.String()

	// Overview: the served request count and the active provider.
	if err := chromedp.Run(ctx, chromedp.Navigate(explorerURL)); err != nil {
		t.Fatal(err)
	}
	waitFor("the request count", `document.querySelector("#requests-served")?.textContent === "3"`)
	if got, want := strings.ReplaceAll(text("#tokens-served"), ",", ""), fmt.Sprint(tokens); got != want {
		t.Fatalf("tokens served: %q, want %q", got, want)
	}
	if got := text("#providers-online"); got != fmt.Sprint(ov.ActiveProviders) {
		t.Fatalf("providers online: %q, want %d", got, ov.ActiveProviders)
	}
	shot("overview")

	// Keyboard: the first Tab reaches the skip link; Enter on a nav link navigates.
	if err := chromedp.Run(ctx, chromedp.KeyEvent("\t")); err != nil {
		t.Fatal(err)
	}
	waitFor("focus on the skip link", `document.activeElement?.classList.contains("skip")`)
	if err := chromedp.Run(ctx, chromedp.Focus(`nav a[href="#/providers"]`, chromedp.ByQuery), chromedp.KeyEvent("\r")); err != nil {
		t.Fatal(err)
	}
	waitFor("the providers page", `location.hash === "#/providers" && `+mainHas(prov[:8]))
	var served []string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`[...document.querySelectorAll("td .served")].map(e => e.textContent).sort()`, &served)); err != nil {
		t.Fatal(err)
	}
	if strings.Join(served, ",") != "0,3" {
		t.Fatalf("requests served in the providers table: %v, want 0 and 3", served)
	}
	shot("providers")

	// The provider's page lists its epoch commitment with the on-chain root.
	if err := chromedp.Run(ctx, chromedp.Navigate(explorerURL+"#/provider/"+prov)); err != nil {
		t.Fatal(err)
	}
	waitFor("the provider page", `document.querySelector("#provider-requests")?.textContent === "3"`)
	waitFor("the commitment root", mainHas(root[:12]))
	shot("provider")

	// The epoch page: the commitment, its root and the receipts sampled for audit.
	if err := chromedp.Run(ctx, chromedp.Navigate(fmt.Sprintf("%s#/epoch/%d", explorerURL, committedEpoch))); err != nil {
		t.Fatal(err)
	}
	waitFor("the epoch's commitment", mainHas(root)+" && "+mainHas("Receipts sampled for audit"))
	shot("epoch")

	// Audits: nothing pending on chain, no verdict against honest providers.
	if err := chromedp.Run(ctx, chromedp.Navigate(explorerURL+"#/audits")); err != nil {
		t.Fatal(err)
	}
	waitFor("the audits page", mainHas("No dispute is open.")+" && "+mainHas("No omission challenge is open.")+" && "+mainHas("No fault has been reported"))
	shot("audits")

	// Receipt checker: a real receipt verifies against the committed root.
	if err := chromedp.Run(ctx, chromedp.Navigate(explorerURL+"#/receipt"),
		chromedp.WaitVisible("#receipt-input", chromedp.ByQuery),
		chromedp.SendKeys("#receipt-input", receiptIDs[1], chromedp.ByQuery),
		chromedp.Click(`#check-form button[type="submit"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitFor("the verdict", `document.querySelector("#verdict")?.textContent === "Verified"`)
	waitFor("the inclusion step", mainHas("under that root"))
	shot("receipt-verified")

	// A malformed receipt gets a clear error.
	if err := chromedp.Run(ctx, chromedp.SetValue("#receipt-input", `{"receipt": 12`, chromedp.ByQuery),
		chromedp.Click(`#check-form button[type="submit"]`, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	waitFor("the error", `(document.querySelector("#check-result .err")?.textContent || "").includes("not a receipt")`)
	shot("receipt-malformed")

	// Settlement: when the epoch's verdict window closes, the emission and
	// fees are paid out; the provider's verified work earns it a reward.
	var settled struct {
		Stats       explorer.EpochStats        `json:"stats"`
		Commitments []explorer.EpochCommitment `json:"commitments"`
		Scores      []explorer.ValidatorScores `json:"scores"`
	}
	poll.Until(t, 60*time.Second, fmt.Sprintf("epoch %d to settle", committedEpoch), func() (bool, string) {
		err := fetchJSON(fmt.Sprintf("http://%s/explorer/api/epoch/%d", api, committedEpoch), &settled)
		return err == nil && settled.Stats.Settled, fmt.Sprintf("%+v (%v)", settled.Stats, err)
	})
	cm := settled.Commitments[0]
	if !cm.Settled || cm.Reward == 0 || settled.Stats.Emission == 0 || settled.Stats.ProviderRewards != cm.Reward || cm.QualityBps != 10000 {
		t.Fatalf("settlement of epoch %d: %+v, commitment %+v", committedEpoch, settled.Stats, cm)
	}
	// The validator's worker audited the epoch and scored the honest provider 100 %.
	if len(settled.Scores) != 1 || len(settled.Scores[0].Scores) != 1 || settled.Scores[0].Scores[0].Provider != prov || settled.Scores[0].Scores[0].ScoreBps != 10000 {
		t.Fatalf("audit scores of epoch %d: %+v", committedEpoch, settled.Scores)
	}
	var paid []explorer.ProviderRow
	if err := fetchJSON("http://"+api+"/explorer/api/providers", &paid); err != nil {
		t.Fatal(err)
	}
	for _, p := range paid {
		if p.Address.String() == prov && (p.Stats.Rewards < cm.Reward || p.ReputationBps == 0) {
			t.Fatalf("provider after settlement: rewards %d (epoch reward %d), reputation %d", p.Stats.Rewards, cm.Reward, p.ReputationBps)
		}
	}
	if err := chromedp.Run(ctx, chromedp.Navigate(fmt.Sprintf("%s#/epoch/%d", explorerURL, committedEpoch))); err != nil {
		t.Fatal(err)
	}
	waitFor("the settlement", mainHas("to providers")+" && "+mainHas("minted"))
	waitFor("the audit scores", mainHas("Audit scores")+` && document.querySelector("td .score")?.textContent === "100 %"`)
	shot("epoch-settled")

	// A compute job, as the banner says: submit the example ray tracer,
	// fetch its result (checked against the chain), and see it on the
	// explorer's job page.
	var submitLine string
	for _, ln := range strings.Split(out, "\n") {
		if i := strings.Index(ln, "agora job submit --example "); i >= 0 && submitLine == "" {
			submitLine = strings.TrimSpace(ln[i+len("agora "):])
		}
		if strings.Contains(ln, "train a model:") && !strings.Contains(ln, "agora job submit --train ") {
			t.Fatalf("the banner's training line does not say how: %s", ln)
		}
	}
	if submitLine == "" {
		t.Fatalf("banner lacks the compute job command:\n%s", out)
	}
	subOut := run(t, strings.Fields(submitLine)...)
	if !strings.Contains(subOut, "order 1 posted") || !strings.Contains(subOut, "uploaded") {
		t.Fatalf("job submit: %s", subOut)
	}
	resDir := t.TempDir()
	resOut := run(t, "job", "result", "1", "--out", resDir, "--node", fmt.Sprintf("tcp://127.0.0.1:%d", ports[1]))
	png, err := os.ReadFile(filepath.Join(resDir, "out", "render.png"))
	if err != nil || len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("job result: %v (%d bytes)\n%s", err, len(png), resOut)
	}
	if err := chromedp.Run(ctx, chromedp.Navigate(explorerURL+"#/job/1")); err != nil {
		t.Fatal(err)
	}
	waitFor("the job page", mainHas("Compute job #1")+" && "+mainHas("Lease #1: done")+" && "+mainHas("Result"))
	shot("job")

	// A storage deal, as the banner says: agora up's provider takes it
	// (its storer seals the file and accepts), and the explorer shows it.
	var dealLine string
	for _, ln := range strings.Split(out, "\n") {
		if i := strings.Index(ln, "agora storage deal "); i >= 0 {
			dealLine = strings.TrimSpace(ln[i+len("agora "):])
		}
	}
	if dealLine == "" {
		t.Fatalf("banner lacks the storage deal command:\n%s", out)
	}
	dealFile := filepath.Join(t.TempDir(), "deal.bin")
	if err := os.WriteFile(dealFile, bytes.Repeat([]byte("agora storage "), 10_000), 0o600); err != nil {
		t.Fatal(err)
	}
	dealOut := run(t, strings.Fields(strings.Replace(dealLine, "FILE", dealFile, 1))...)
	if !strings.Contains(dealOut, "deal 1: active") || !strings.Contains(dealOut, "provider sealed replica") {
		t.Fatalf("storage deal: %s", dealOut)
	}
	if err := chromedp.Run(ctx, chromedp.Navigate(explorerURL+"#/storage/deal/1")); err != nil {
		t.Fatal(err)
	}
	waitFor("the storage deal page", mainHas("Storage deal #1")+" && "+mainHas("active")+" && "+mainHas("16 segments per epoch"))
	shot("storage-deal")

	// The sample dataset agora up publishes, on the Data tab.
	if err := chromedp.Run(ctx, chromedp.Navigate(explorerURL+"#/dataset/1")); err != nil {
		t.Fatal(err)
	}
	waitFor("the dataset page", mainHas("Dataset #1: sample-texts")+" && "+mainHas("CC0")+" && "+mainHas("Grants"))
	shot("dataset")

	// The trained-model registry's tab: nothing trained on a fresh devnet;
	// an unregistered hash says so.
	if err := chromedp.Run(ctx, chromedp.Navigate(explorerURL+"#/models")); err != nil {
		t.Fatal(err)
	}
	waitFor("the models page", mainHas("Trained models")+" && "+mainHas("No trained model has been registered yet."))
	if err := chromedp.Run(ctx, chromedp.Navigate(explorerURL+"#/model/"+strings.Repeat("ab", 32))); err != nil {
		t.Fatal(err)
	}
	waitFor("an unregistered model's page", mainHas("no model "+strings.Repeat("ab", 32)+" is registered"))

	// The zk tab: a tiny model registered and one proof of it verified on
	// chain with the CLI; its page serves the verifying key, which checks
	// the proof offline.
	zkDir := t.TempDir()
	zkModel, zkIn, zkProof := filepath.Join(zkDir, "model.json"), filepath.Join(zkDir, "in.json"), filepath.Join(zkDir, "proof.json")
	if err := errors.Join(os.WriteFile(zkModel, []byte(`{"layers":[{"kind":"dense","in":4,"out":3,"w":[1,-2,3,4,5,-6,7,8,-9,10,11,-12],"b":[0,5,-5]}]}`), 0o644),
		os.WriteFile(zkIn, []byte(`{"inputs":[[1,-2,3,4]]}`), 0o644)); err != nil {
		t.Fatal(err)
	}
	rpc := fmt.Sprintf("tcp://127.0.0.1:%d", ports[1])
	run(t, "zk", "compile", "--model", zkModel, "--batch", "1", "--dir", zkDir)
	run(t, "zk", "setup", "--dir", zkDir)
	run(t, "zk", "prove", "--dir", zkDir, "--model", zkModel, "--input", zkIn, "--out", zkProof)
	if out := run(t, "zk", "register", "--dir", zkDir, "--model", zkModel, "--name", "tiny-zk", "--price", "7", "--from", "demo", "--keyring", "test", "--home", home, "--node", rpc); !strings.Contains(out, "zk model 1 (tiny-zk) registered") {
		t.Fatalf("zk register: %s", out)
	}
	var sub struct {
		Statement string `json:"statement"`
	}
	runJSON(t, &sub, "zk", "submit", "--model-id", "1", "--proof", zkProof, "--from", "demo", "--keyring", "test", "--home", home, "--node", rpc)
	if err := chromedp.Run(ctx, chromedp.Navigate(explorerURL+"#/zk")); err != nil {
		t.Fatal(err)
	}
	waitFor("the zk tab", mainHas("zk models")+" && "+mainHas("tiny-zk")+` && document.querySelector("td .zk-proofs")?.textContent === "1"`)
	shot("zk")
	if err := chromedp.Run(ctx, chromedp.Navigate(explorerURL+"#/zk/1")); err != nil {
		t.Fatal(err)
	}
	waitFor("the zk model page", mainHas("zk model #1")+` && document.querySelector("#zk-proof-count")?.textContent === "1" && `+mainHas(sub.Statement[:12]))
	shot("zk-model")
	var href string
	if err := chromedp.Run(ctx, chromedp.AttributeValue("#vk-download", "href", &href, nil, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + api + href)
	if err != nil {
		t.Fatal(err)
	}
	vk, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", href, resp.StatusCode, vk)
	}
	vkFile := filepath.Join(t.TempDir(), "verifying.key")
	if err := os.WriteFile(vkFile, vk, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := run(t, "zk", "verify", "--vk", vkFile, "--proof", zkProof); !strings.Contains(out, "valid: 1 inferences") {
		t.Fatalf("zk verify with the explorer's key: %s", out)
	}
	// The proof's tx, from its row, reads as what it did.
	var proofTx string
	if err := chromedp.Run(ctx, chromedp.AttributeValue(`main td a[href^="#/tx/"]`, "href", &proofTx, nil, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx, chromedp.Navigate(explorerURL+proofTx)); err != nil {
		t.Fatal(err)
	}
	waitFor("the proof's tx page", mainHas("verify_zk_proof")+" && "+mainHas("The chain verified a proof of 1 inference of zk model #1"))
	shot("zk-tx")

	// Unknown routes: in the app and on the server.
	if err := chromedp.Run(ctx, chromedp.Navigate(explorerURL+"#/no-such-page")); err != nil {
		t.Fatal(err)
	}
	waitFor("the not-found page", mainHas("Page not found"))
	resp, err = http.Get("http://" + api + "/explorer/no-such-page")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("GET /explorer/no-such-page: %d", resp.StatusCode)
	}

	// Ctrl-C stops everything cleanly.
	up.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			log, _ := os.ReadFile(filepath.Join(home, "up.log"))
			t.Fatalf("agora up exit: %v\n%s", err, log)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agora up did not stop within 30 s of SIGINT")
	}
}

// twoFreePorts returns a port p with p and p+1 free on 127.0.0.1 (the
// second provider listens on the first one's port + 1).
func twoFreePorts(t *testing.T) int {
	for i := 0; i < 50; i++ {
		p := testnet.FreePorts(t, 1)[0]
		if p < 65535 && portIsFree(p+1) {
			return p
		}
	}
	t.Fatal("no two consecutive free ports")
	return 0
}

func portIsFree(p int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
