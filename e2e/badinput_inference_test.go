package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/protocol/payment"
	"github.com/agoranet/agora/receipt"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

type httpResult struct {
	status int
	body   string
	errMsg string
}

func post(t *testing.T, url, body string, header map[string]string) httpResult {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		} `json:"error"`
	}
	json.Unmarshal(b, &e)
	return httpResult{status: resp.StatusCode, body: string(b), errMsg: e.Error.Message}
}

func (in *inferenceNet) receiptCount(t *testing.T) int {
	var list struct {
		Data []gateway.StoredReceipt `json:"data"`
	}
	getJSON(t, in.gw.URL()+"/v1/receipts", &list)
	return len(list.Data)
}

// TestInferenceBadInput: each kind of bad request gets a clear OpenAI-style
// error with the right status, and nothing is billed.
func TestInferenceBadInput(t *testing.T) {
	in := startInference(t)
	ctx := context.Background()
	gw := in.gw.URL() + "/v1/chat/completions"
	// one good request so the gateway has a channel
	if _, err := in.oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: in.model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxTokens: openai.Int(4)}); err != nil {
		t.Fatal(err)
	}
	base := in.receiptCount(t)
	long := strings.Repeat("robot ", 400)
	gwCases := []struct {
		name, body string
		status     int
		msg        string
	}{
		{"malformed JSON", `{"model": "tiny", "messages": [`, 400, "malformed JSON"},
		{"unknown model", `{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}`, 404, `serves model "gpt-9"`},
		{"prompt over context", `{"model":"tiny","messages":[{"role":"user","content":"` + long + `"}],"max_tokens":4}`, 400, "context length 256"},
		{"absurd max_tokens", `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":999999999}`, 400, "max_tokens must be"},
		{"negative max_tokens", `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":-3}`, 400, "max_tokens must be"},
		{"bad role", `{"model":"tiny","messages":[{"role":"wizard","content":"hi"}]}`, 400, "unsupported role"},
		{"oversize body", `{"model":"tiny","messages":[{"role":"user","content":"` + strings.Repeat("x", 2<<20) + `"}]}`, 413, "exceeds"},
	}
	for _, c := range gwCases {
		r := post(t, gw, c.body, nil)
		if r.status != c.status || !strings.Contains(r.errMsg, c.msg) {
			t.Errorf("%s: %d %q, want %d containing %q", c.name, r.status, r.errMsg, c.status, c.msg)
		}
	}
	if n := in.receiptCount(t); n != base {
		t.Fatalf("bad requests produced %d receipts", n-base)
	}
	for _, q := range []string{"limit=abc", "limit=0", "limit=5000", "after=-1"} {
		resp, err := http.Get(in.gw.URL() + "/v1/receipts?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("GET /v1/receipts?%s answered %d, want 400", q, resp.StatusCode)
		}
	}

	// Straight to the provider: payment problems are 402s.
	p := in.providers[0]
	pURL := p.URL() + "/v1/chat/completions"
	good := `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":4}`
	client := in.nw.Accounts[0]
	c := in.nw.Client(0)
	var chID uint64
	var chs []struct {
		ID uint64 `json:"id"`
	}
	if err := c.Query(ctx, "/channels/client/"+testnet.Addr(client).String(), 0, &chs); err != nil || len(chs) == 0 {
		t.Fatalf("client channels: %v %v", chs, err)
	}
	for _, ch := range chs {
		chID = ch.ID // the gateway's channel to provider 0 is the first opened
		break
	}
	billedBefore := p.Billed(chID)
	valid := payment.FormatVoucher(types.SignVoucher(client, in.nw.ChainID, chID, billedBefore))
	otherKey := testnet.Key("stranger")
	wrongSigner := payment.FormatVoucher(types.SignVoucher(otherKey, in.nw.ChainID, chID, billedBefore))
	otherChannel := types.SignVoucher(client, in.nw.ChainID, chID+100, billedBefore)
	otherChannel.ChannelId = chID // replayed onto another channel: signature no longer matches
	replayed := payment.FormatVoucher(otherChannel)
	above := payment.FormatVoucher(types.SignVoucher(client, in.nw.ChainID, chID, billedBefore+1000))
	pCases := []struct {
		name, voucher string
		status        int
		msg           string
	}{
		{"missing voucher", "", 402, "voucher header must be"},
		{"malformed voucher", "1:2:zz", 402, "malformed"},
		{"voucher signed by someone else", wrongSigner, 402, "voucher signature does not verify"},
		{"voucher replayed on another channel", replayed, 402, "voucher signature does not verify"},
		{"voucher above what was billed", above, 402, "vouchers pay for receipts already given"},
		{"unknown channel", payment.FormatVoucher(types.SignVoucher(client, in.nw.ChainID, 999, 0)), 402, "channel 999"},
	}
	provKey := in.nw.Accounts[1]
	// authenticated as the gateway does it: these are payment problems
	authed := func(voucher string) map[string]string {
		v, err := payment.ParseVoucher(voucher)
		if err != nil {
			return map[string]string{payment.VoucherHeader: voucher}
		}
		return authHeaders(t, in.nw.ChainID, client, provKey, v.ChannelId, "/v1/chat/completions", good, voucher)
	}
	for _, pc := range pCases {
		h := map[string]string{}
		if pc.voucher != "" {
			h = authed(pc.voucher)
		}
		r := post(t, pURL, good, h)
		if r.status != pc.status || !strings.Contains(r.errMsg, pc.msg) {
			t.Errorf("%s: %d %q, want %d containing %q", pc.name, r.status, r.errMsg, pc.status, pc.msg)
		}
	}
	// a correct voucher works directly too (sanity check of the test itself)
	if r := post(t, pURL, good, authed(valid)); r.status != 200 {
		t.Fatalf("valid voucher: %d %s", r.status, r.body)
	}
	if p.Billed(chID) <= billedBefore {
		t.Fatal("the valid direct request was not billed")
	}

	// Expired and underfunded channels, opened by hand.
	signer := c.NewSigner(client)
	h := in.nw.Height(0)
	res, err := signer.Send(ctx, &types.MsgOpenChannel{Provider: p.Address(), Deposit: 10, ExpiryHeight: h + 500})
	if err != nil {
		t.Fatal(err)
	}
	small := parseU(t, res.Events["channel_id"])
	res, err = signer.Send(ctx, &types.MsgOpenChannel{Provider: p.Address(), Deposit: 1_000_000, ExpiryHeight: h + 8})
	if err != nil {
		t.Fatal(err)
	}
	short := parseU(t, res.Events["channel_id"])
	for _, pc := range []struct {
		name string
		ch   uint64
		msg  string
	}{{"underfunded channel", small, "underfunded"}, {"expiring channel", short, "too soon to settle"}} {
		r := post(t, pURL, good, authed(payment.FormatVoucher(types.SignVoucher(client, in.nw.ChainID, pc.ch, 0))))
		if r.status != 402 || !strings.Contains(r.errMsg, pc.msg) {
			t.Errorf("%s: %d %q", pc.name, r.status, r.errMsg)
		}
		if b := p.Billed(pc.ch); b != 0 {
			t.Errorf("%s: billed %d", pc.name, b)
		}
	}
}

// TestMisbehavingProviders: a provider that answers garbage is skipped before
// the first byte (the request succeeds elsewhere, unbilled by the bad one);
// one that drops a stream midway, or completes it with a forged receipt,
// gets no receipt booked and no payment; nor does one whose receipt, sent
// in a 103 ahead of its response (as early receipts, now removed, were),
// is contradicted by that response, or never followed by one.
func TestMisbehavingProviders(t *testing.T) {
	// failures fade fast here, so the misbehaving provider is tried again
	const halfLife = 100 * time.Millisecond
	in := startInferenceWith(t, nil, func(c *gateway.Config) { c.FailureHalfLife = halfLife })
	// The gateway keeps a provider's failure count to itself and decays it
	// with its clock, halving every half-life; a provider whose count is
	// below one is tried in price order again. So the wait for that is the
	// time it takes: after one failed request (one or two failures on a
	// count below one), ten half-lives leave a wide margin.
	fade := func() { time.Sleep(10 * halfLife) }
	ctx := context.Background()
	c := in.nw.Client(0)
	// a fake provider, cheapest of all, registered on chain
	var mode string
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fakeKey := testnet.Key("fake-provider")
	var fakeIndex uint64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(mode, "ahead-") && r.URL.Path == "/v1/chat/completions":
			// A receipt that checks out, sent ahead; then a response that
			// does not match it (usage) or no response at all.
			v, err := payment.ParseVoucher(r.Header.Get(payment.VoucherHeader))
			if err != nil {
				http.Error(w, err.Error(), 402)
				return
			}
			fakeIndex++
			sr, _ := receipt.Sign(fakeKey, &types.Receipt{ChainId: in.nw.ChainID, Provider: testnet.Addr(fakeKey), ChannelId: v.ChannelId,
				Index: fakeIndex, PromptTokens: 5, CompletionTokens: 2, PriceInputPer_1K: 1, PriceOutputPer_1K: 1,
				Amount: inference.Cost(5, 2, 1, 1), VoucherCumulative: v.CumulativeAmount})
			w.Header().Set(inference.ReceiptHeader, sr.Encode())
			w.WriteHeader(http.StatusEarlyHints)
			if mode == "ahead-drop" {
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"x","object":"chat.completion","created":1,"model":"tiny","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}`)
		case mode == "garbage":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte("this is not json"))
		case mode == "drop" && strings.Contains(readAll(r), `"stream":true`):
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			fmt.Fprintf(w, "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"par\"},\"finish_reason\":null}]}\n\n")
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		case mode == "forged" && strings.Contains(readAll(r), `"stream":true`):
			// a whole stream, but its receipt is not a receipt
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			fmt.Fprintf(w, "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"tiny\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"all\"},\"finish_reason\":\"stop\"}]}\n\n")
			fmt.Fprintf(w, "%sAAAAforged\ndata: [DONE]\n\n", inference.ReceiptComment)
		default:
			http.Error(w, "no", 500)
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	fund := c.NewSigner(in.nw.Operators[0])
	if _, err := fund.Send(ctx, &types.MsgSend{To: testnet.Addr(fakeKey), Amount: 1_000_000_000}); err != nil {
		t.Fatal(err)
	}
	fs := c.NewSigner(fakeKey)
	if _, err := fs.Send(ctx, &types.MsgBondProvider{Amount: in.nw.Params.MinProviderStake}); err != nil {
		t.Fatal(err)
	}
	// It also offers a model of its own, which the gateway lists once its
	// directory holds the fake provider.
	h, own := sha256.Sum256([]byte("fake")), sha256.Sum256([]byte("fake-only"))
	if _, err := fs.Send(ctx, &types.MsgRegisterProvider{Info: &types.ProviderInfo{
		Endpoint: "http://" + ln.Addr().String(), PriceInputPer_1K: 1, PriceOutputPer_1K: 1,
		Models:       []*types.ModelOffer{{Hash: h[:], Name: in.model, ContextLength: 256}, {Hash: own[:], Name: "fake-only", ContextLength: 256}},
		Capabilities: []string{"chat"},
	}}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the gateway's directory to list the fake provider", func() (bool, string) {
		var models struct {
			Data []struct{ ID string } `json:"data"`
		}
		getJSON(t, in.gw.URL()+"/v1/models", &models)
		for _, m := range models.Data {
			if m.ID == "fake-only" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("models %+v", models.Data)
	})
	before := in.receiptCount(t)

	mode = "garbage"
	res, err := in.oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: in.model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxTokens: openai.Int(4)})
	if err != nil || res.Choices[0].Message.Content == "" {
		t.Fatalf("request with a garbage provider first: %v", err)
	}
	var list struct {
		Data []gateway.StoredReceipt `json:"data"`
	}
	getJSON(t, in.gw.URL()+"/v1/receipts", &list)
	if len(list.Data) != before+1 || list.Data[len(list.Data)-1].Provider == testnet.Addr(fakeKey).String() {
		t.Fatalf("receipts after failover: %+v", list.Data)
	}

	// Its failure has faded: the cheapest provider is tried first again, and
	// this time it drops the stream after the first chunk.
	mode = "drop"
	fade()
	before = in.receiptCount(t)
	body := `{"model":"tiny","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":4}`
	resp, err := http.Post(in.gw.URL()+"/v1/chat/completions", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get(gateway.ProviderHeader) != testnet.Addr(fakeKey).String() {
		t.Fatalf("the stream was not served by the dropping provider (header %q)", resp.Header.Get(gateway.ProviderHeader))
	}
	if !strings.Contains(string(got), `"par"`) || strings.Contains(string(got), "[DONE]") {
		t.Fatalf("client should see the partial stream without [DONE]: %q", got)
	}
	if n := in.receiptCount(t); n != before {
		t.Fatalf("a dropped stream was booked: %d receipts", n-before)
	}
	// A complete stream with a forged receipt: the client has the tokens
	// but no [DONE] (its SDK reports the stream incomplete), and nothing
	// is booked.
	mode = "forged"
	fade()
	resp, err = http.Post(in.gw.URL()+"/v1/chat/completions", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get(gateway.ProviderHeader) != testnet.Addr(fakeKey).String() {
		t.Fatalf("the stream was not served by the forging provider (header %q)", resp.Header.Get(gateway.ProviderHeader))
	}
	if !strings.Contains(string(got), `"all"`) || strings.Contains(string(got), "[DONE]") || strings.Contains(string(got), gateway.ReceiptIDComment) ||
		resp.Trailer.Get(gateway.ReceiptIDHeader) != "" {
		t.Fatalf("a stream with a forged receipt: %q, trailer %q", got, resp.Trailer.Get(gateway.ReceiptIDHeader))
	}
	if n := in.receiptCount(t); n != before {
		t.Fatalf("a forged stream receipt was booked: %d receipts", n-before)
	}
	// A receipt sent ahead (103) that its response then contradicts, or
	// whose response never comes: nothing is booked, and the request
	// succeeded on another provider.
	for _, m := range []string{"ahead-mismatch", "ahead-drop"} {
		mode = m
		fade()
		before = in.receiptCount(t)
		resp, err := http.Post(in.gw.URL()+"/v1/chat/completions", "application/json",
			bytes.NewReader([]byte(`{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":4}`)))
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get(gateway.ProviderHeader) == testnet.Addr(fakeKey).String() {
			t.Fatalf("%s: status %d from %s", m, resp.StatusCode, resp.Header.Get(gateway.ProviderHeader))
		}
		getJSON(t, in.gw.URL()+"/v1/receipts", &list)
		if len(list.Data) != before+1 || list.Data[len(list.Data)-1].Provider == testnet.Addr(fakeKey).String() {
			t.Fatalf("%s: receipts %+v", m, list.Data[before:])
		}
	}
	// the fake provider never gets paid: nothing it could redeem
	var chans []struct {
		Redeemed uint64 `json:"redeemed"`
	}
	c.Query(ctx, "/channels/provider/"+testnet.Addr(fakeKey).String(), 0, &chans)
	for _, ch := range chans {
		if ch.Redeemed != 0 {
			t.Fatal("the misbehaving provider was paid")
		}
	}
}

func readAll(r *http.Request) string {
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func parseU(t *testing.T, s string) uint64 {
	var v uint64
	if _, err := fmt.Sscan(s, &v); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return v
}

// TestCompletionsAndOverload: /v1/completions works through the gateway with
// the SDK, and a provider past its queue answers 429 instead of growing.
func TestCompletionsAndOverload(t *testing.T) {
	in := startInference(t)
	ctx := context.Background()
	res, err := in.oa.Completions.New(ctx, openai.CompletionNewParams{
		Model:     openai.CompletionNewParamsModel(in.model),
		Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String("once upon a time")},
		MaxTokens: openai.Int(8),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Choices) != 1 || res.Choices[0].Text == "" || res.Usage.CompletionTokens == 0 {
		t.Fatalf("completion %+v", res)
	}
	// overload the cheaper provider directly: concurrency 2 + queue 16
	p := in.providers[0]
	client := in.nw.Accounts[0]
	c := in.nw.Client(0)
	var chs []struct {
		ID uint64 `json:"id"`
	}
	if err := c.Query(ctx, "/channels/client/"+testnet.Addr(client).String(), 0, &chs); err != nil || len(chs) == 0 {
		t.Fatalf("channels %v %v", chs, err)
	}
	v := payment.FormatVoucher(types.SignVoucher(client, in.nw.ChainID, chs[0].ID, p.Billed(chs[0].ID)))
	body := `{"model":"tiny","messages":[{"role":"user","content":"a long story"}],"max_tokens":200}`
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	var msg429 string
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := post(t, p.URL()+"/v1/chat/completions", body, authHeaders(t, in.nw.ChainID, client, in.nw.Accounts[1], chs[0].ID, "/v1/chat/completions", body, v))
			mu.Lock()
			codes[r.status]++
			if r.status == 429 {
				msg429 = r.errMsg
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[429] == 0 || codes[200] == 0 || !strings.Contains(msg429, "overloaded") {
		t.Fatalf("status counts %v (429 message %q)", codes, msg429)
	}
}
