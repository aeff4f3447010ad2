package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/internal/oai"
)

// TestLogprobs: through the gateway, the official SDK gets a chat's
// log-probs with three alternatives per token; they are the log-probs the
// provider recorded in the request's transcript (the ones validators
// re-execute), bit for bit; the same request streamed carries the same
// log-probs chunk by chunk; text completions get the legacy arrays; and a
// request for tools is refused by name, unbilled.
func TestLogprobs(t *testing.T) {
	in := startInference(t)
	ctx := context.Background()
	prompt := "tell me about log probabilities"

	var httpResp *http.Response
	res, err := in.oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:       in.model,
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
		MaxTokens:   openai.Int(10),
		Seed:        openai.Int(7),
		Logprobs:    openai.Bool(true),
		TopLogprobs: openai.Int(3),
	}, option.WithResponseInto(&httpResp))
	if err != nil {
		t.Fatal(err)
	}
	content := res.Choices[0].Logprobs.Content
	if int64(len(content)) != res.Usage.CompletionTokens || len(content) == 0 {
		t.Fatalf("%d log-probs for %d tokens", len(content), res.Usage.CompletionTokens)
	}
	var joined []byte
	for i, c := range content {
		for _, b := range c.Bytes {
			joined = append(joined, byte(b))
		}
		if len(c.TopLogprobs) != 3 || c.Logprob > 0 || c.TopLogprobs[0].Logprob < c.Logprob ||
			c.TopLogprobs[0].Logprob < c.TopLogprobs[1].Logprob || c.TopLogprobs[1].Logprob < c.TopLogprobs[2].Logprob {
			t.Fatalf("token %d: %+v", i, c)
		}
	}
	if jsonText(joined) != res.Choices[0].Message.Content {
		t.Fatalf("the tokens' bytes %q are not the answer %q", joined, res.Choices[0].Message.Content)
	}
	// the provider's transcript holds the same log-probs
	tr := transcriptLogprobs(t, in, httpResp.Header.Get(gateway.ReceiptIDHeader))
	if len(tr) != len(content) {
		t.Fatalf("transcript has %d log-probs, the answer %d", len(tr), len(content))
	}
	for i := range tr {
		if float32(content[i].Logprob) != tr[i] {
			t.Fatalf("token %d: answered log-prob %v, transcript %v", i, content[i].Logprob, tr[i])
		}
	}

	// streamed: the same log-probs, chunk by chunk
	body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":%q}],"max_tokens":10,"seed":7,"logprobs":true,"top_logprobs":3,"stream":true}`, in.model, prompt)
	resp, err := http.Post(in.gw.URL()+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var streamed []float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Logprobs *struct {
					Content []struct {
						Logprob     float64           `json:"logprob"`
						TopLogprobs []json.RawMessage `json:"top_logprobs"`
					} `json:"content"`
				} `json:"logprobs"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("chunk %s: %v", data, err)
		}
		for _, ch := range c.Choices {
			if ch.Logprobs != nil {
				for _, tok := range ch.Logprobs.Content {
					if len(tok.TopLogprobs) != 3 {
						t.Fatalf("streamed token with %d alternatives", len(tok.TopLogprobs))
					}
					streamed = append(streamed, tok.Logprob)
				}
			}
		}
	}
	resp.Body.Close()
	if len(streamed) != len(content) {
		t.Fatalf("streamed %d log-probs, %d without streaming", len(streamed), len(content))
	}
	for i := range streamed {
		if streamed[i] != content[i].Logprob {
			t.Fatalf("token %d: streamed %v, not streamed %v", i, streamed[i], content[i].Logprob)
		}
	}

	// text completions: the legacy arrays
	var tc struct {
		Choices []struct {
			Text     string `json:"text"`
			Logprobs struct {
				Tokens        []string             `json:"tokens"`
				TokenLogprobs []float64            `json:"token_logprobs"`
				TopLogprobs   []map[string]float64 `json:"top_logprobs"`
				TextOffset    []int                `json:"text_offset"`
			} `json:"logprobs"`
		} `json:"choices"`
		Usage oai.Usage `json:"usage"`
	}
	resp, err = http.Post(in.gw.URL()+"/v1/completions", "application/json",
		strings.NewReader(fmt.Sprintf(`{"model":%q,"prompt":"once upon a time","max_tokens":6,"seed":3,"logprobs":2}`, in.model)))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&tc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("completion: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	lp := tc.Choices[0].Logprobs
	n := tc.Usage.CompletionTokens
	if len(lp.Tokens) != n || len(lp.TokenLogprobs) != n || len(lp.TopLogprobs) != n || len(lp.TextOffset) != n || n == 0 {
		t.Fatalf("legacy logprobs for %d tokens: %+v", n, lp)
	}
	// Offsets count the text's bytes; the token strings went through JSON
	// (a token that splits a character is not valid UTF-8 on its own), so
	// only their order is checked here and their values against the transcript.
	tr = transcriptLogprobs(t, in, resp.Header.Get(gateway.ReceiptIDHeader))
	for i := range lp.Tokens {
		if (i == 0 && lp.TextOffset[0] != 0) || (i > 0 && lp.TextOffset[i] <= lp.TextOffset[i-1]) ||
			len(lp.TopLogprobs[i]) == 0 || len(lp.TopLogprobs[i]) > 2 || float32(lp.TokenLogprobs[i]) != tr[i] {
			t.Fatalf("token %d: offsets %v, top %v, log-prob %v (transcript %v)", i, lp.TextOffset, lp.TopLogprobs[i], lp.TokenLogprobs[i], tr[i])
		}
	}

	// native providers register the capability on chain
	var pv api.ProviderView
	if err := in.nw.Client(0).Query(ctx, "/provider/"+in.providers[0].Address().String(), 0, &pv); err != nil {
		t.Fatal(err)
	}
	if strings.Join(pv.Capabilities, ",") != "chat,completions,stream,logprobs" {
		t.Fatalf("registered capabilities %v", pv.Capabilities)
	}

	// a request the network cannot honour is refused by name and not billed
	var before struct{ Data []gateway.StoredReceipt }
	getJSON(t, in.gw.URL()+"/v1/receipts", &before)
	resp, err = http.Post(in.gw.URL()+"/v1/chat/completions", "application/json", strings.NewReader(fmt.Sprintf(
		`{"model":%q,"messages":[{"role":"user","content":"call f"}],"tools":[{"type":"function","function":{"name":"f"}}]}`, in.model)))
	if err != nil {
		t.Fatal(err)
	}
	var e struct{ Error oai.Error }
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 400 || e.Error.Param != "tools" || !strings.Contains(e.Error.Message, "not supported") {
		t.Fatalf("tools: %d %+v", resp.StatusCode, e.Error)
	}
	var after struct{ Data []gateway.StoredReceipt }
	getJSON(t, in.gw.URL()+"/v1/receipts", &after)
	if len(after.Data) != len(before.Data) {
		t.Fatalf("a refused request was billed: %d receipts, then %d", len(before.Data), len(after.Data))
	}
}

// jsonText is b as a JSON string carries it: each byte that is not valid
// UTF-8 becomes U+FFFD (a random model's tokens may split characters).
func jsonText(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		sb.WriteRune(r) // RuneError for an invalid byte, as encoding/json writes it
		b = b[size:]
	}
	return sb.String()
}

// transcriptLogprobs returns the log-probs the provider recorded for the
// request with this receipt id.
func transcriptLogprobs(t *testing.T, in *inferenceNet, id string) []float32 {
	t.Helper()
	var rec gateway.StoredReceipt
	getJSON(t, in.gw.URL()+"/v1/receipts/"+id, &rec)
	for _, p := range in.providers {
		if p.Address().String() == rec.Provider {
			tr, err := p.Store().Transcript(rec.Epoch, rec.Index)
			if err != nil {
				t.Fatal(err)
			}
			return tr.Logprobs
		}
	}
	t.Fatalf("receipt %s: no provider %s", id, rec.Provider)
	return nil
}
