package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestModelSimulate: `agora model simulate` serves a GGUF like a GPU server
// would — OpenAI completions with log-probs for every token (bytes and top
// alternatives) — answers bad requests with errors, and stops cleanly on
// SIGINT.
func TestModelSimulate(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "tiny.gguf")
	run(t, "model", "new", "--dim", "64", "--layers", "1", "--heads", "4", "--vocab", "600", "--context", "256", "--type", "q8_0", "-o", model)
	port := twoFreePorts(t)
	p := startAgora(t, "model", "simulate", "--model", model, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--noise", "0.05")
	base := fmt.Sprintf("http://127.0.0.1:%d/v1", port)
	waitHTTP(t, base+"/models", p)

	resp, err := http.Post(base+"/completions", "application/json",
		strings.NewReader(`{"model":"tiny","prompt":[1,20,30,40],"max_tokens":12,"temperature":1,"seed":5,"logprobs":3}`))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Choices []struct {
			Text     string `json:"text"`
			Logprobs struct {
				Content []struct {
					Logprob     float64 `json:"logprob"`
					Bytes       []int   `json:"bytes"`
					TopLogprobs []struct {
						Logprob float64 `json:"logprob"`
					} `json:"top_logprobs"`
				} `json:"content"`
			} `json:"logprobs"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	content := out.Choices[0].Logprobs.Content
	if out.Usage.PromptTokens != 4 || out.Usage.CompletionTokens != len(content) || len(content) == 0 {
		t.Fatalf("usage %+v for %d tokens", out.Usage, len(content))
	}
	for i, c := range content {
		if c.Logprob > 0 || len(c.Bytes) == 0 || len(c.TopLogprobs) != 3 || c.TopLogprobs[0].Logprob < c.TopLogprobs[2].Logprob {
			t.Fatalf("token %d: %+v", i, c)
		}
	}
	for body, want := range map[string]int{`{"model":"other","prompt":"x"}`: 404, `{"model":"tiny","prompt":[99999]}`: 400, `nope`: 400} {
		resp, err := http.Post(base+"/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s: status %d, want %d", body, resp.StatusCode, want)
		}
	}
	p.StopGracefully(t, syscall.SIGINT, 10*time.Second)
}
