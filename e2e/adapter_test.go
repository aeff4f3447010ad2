package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

// an OpenAI-compatible server standing in for llama.cpp / vLLM / Ollama
func fakeOpenAI(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model     string `json:"model"`
			Stream    bool   `json:"stream"`
			MaxTokens int    `json:"max_tokens"`
		}
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &req)
		if req.Model == "broken" {
			http.Error(w, `{"error":{"message":"out of memory","type":"server_error"}}`, 500)
			return
		}
		if req.Model != "llama-3-8b" {
			http.Error(w, `{"error":{"message":"no such model","type":"invalid_request_error"}}`, 404)
			return
		}
		words := []string{"Paris", " is", " the", " capital", "."}
		if req.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, wd := range words {
				fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", wd)
			}
			fmt.Fprintf(w, "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n")
			fmt.Fprintf(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":5,\"total_tokens\":14}}\n\ndata: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"x","object":"chat.completion","created":1,"model":"llama-3-8b","choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":5,"total_tokens":14}}`, strings.Join(words, ""))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/v1"
}

// TestOpenAIAdapterProvider: a provider in front of an existing
// OpenAI-compatible server bills the backend's exact usage, streaming and
// not, and is paid exactly that.
func TestOpenAIAdapterProvider(t *testing.T) {
	params := types.DefaultParams()
	params.EpochLength, params.CommitWindow = 10, 4
	nw := testnet.New(t, testnet.Options{Validators: 1, Accounts: 2, Params: &params, BlockTime: 150 * time.Millisecond})
	if err := nw.WaitHeight(0, 2, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	adapter, err := provider.NewOpenAIBackend(fakeOpenAI(t), "", []string{"llama-3-8b", "broken"}, 8192)
	if err != nil {
		t.Fatal(err)
	}
	p, err := provider.New(provider.Config{ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[1], Listen: "127.0.0.1:0",
		DataDir: filepath.Join(dir, "p"), PriceIn: 1000, PriceOut: 4000, Concurrency: 4, Tick: 100 * time.Millisecond},
		adapter, quietLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	gw, err := gateway.New(gateway.Config{ChainRPC: nw.Configs[0].RPC.Laddr, Key: nw.Accounts[0], Listen: "127.0.0.1:0",
		DataDir: filepath.Join(dir, "g"), Deposit: 1_000_000, ChannelBlocks: 400, Refresh: 200 * time.Millisecond}, quietLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer gw.Stop()
	oa := openai.NewClient(option.WithBaseURL(gw.URL()+"/v1/"), option.WithAPIKey("x"), option.WithMaxRetries(0))
	res, err := oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "llama-3-8b",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is the capital of France?")}, MaxTokens: openai.Int(20)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Choices[0].Message.Content != "Paris is the capital." || res.Usage.PromptTokens != 9 || res.Usage.CompletionTokens != 5 {
		t.Fatalf("completion %+v", res)
	}
	stream := oa.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "llama-3-8b",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Again?")}, MaxTokens: openai.Int(20)})
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil || acc.Choices[0].Message.Content != "Paris is the capital." {
		t.Fatalf("stream %+v %v", acc.Choices, err)
	}
	var list struct {
		Data []gateway.StoredReceipt `json:"data"`
	}
	getJSON(t, gw.URL()+"/v1/receipts", &list)
	// 9 prompt tokens at 1000/1k + 5 completion tokens at 4000/1k = 9 + 20 = 29 uagr each
	if len(list.Data) != 2 || list.Data[0].Amount != 29 || list.Data[1].Amount != 29 || list.Data[0].Prompt != 9 || list.Data[1].Output != 5 {
		t.Fatalf("receipts %+v", list.Data)
	}
	c := nw.Client(0)
	poll.Until(t, 60*time.Second, "58 uagr redeemed on one channel", func() (bool, string) {
		var chans []api.ChannelView
		err := c.Query(ctx, "/channels/provider/"+p.Address().String(), 0, &chans)
		return len(chans) == 1 && chans[0].Redeemed == 58, fmt.Sprintf("channels %+v (%v)", chans, err)
	})
	// A backend that fails before its first token: the stream never
	// started, so the client gets an error status, not a 200 stream cut
	// short, and nothing is billed.
	r := post(t, gw.URL()+"/v1/chat/completions", `{"model":"broken","stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	if r.status != 503 || !strings.Contains(r.errMsg, "generation failed") || !strings.Contains(r.errMsg, "out of memory") {
		t.Fatalf("a stream whose backend fails at once: %d %q %s", r.status, r.errMsg, r.body)
	}
	getJSON(t, gw.URL()+"/v1/receipts", &list)
	if len(list.Data) != 2 {
		t.Fatalf("a failed stream was booked: %d receipts", len(list.Data))
	}
	// an unknown model is a clear 404 from the gateway (the registry knows what the adapter serves)
	r = post(t, gw.URL()+"/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`, nil)
	if r.status != 404 {
		t.Fatalf("unknown model: %d %s", r.status, r.body)
	}
}
