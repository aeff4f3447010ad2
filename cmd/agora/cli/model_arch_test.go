package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestModelArchs: `model new --arch` writes Qwen3 and Gemma 3 models that
// `generate --chat` runs through their own chat templates (the prompt
// opens with the template's turn marker), and an unknown architecture is
// refused by name.
func TestModelArchs(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		arch, tokenizer string
		start           []int // first prompt ids: the template's opening
	}{
		{"gemma3", "llama", []int{1, 3}}, // <s> <start_of_turn>
		{"qwen3", "gpt2", []int{1, 120}}, // <|im_start|> "user"
	} {
		path := filepath.Join(dir, tc.arch+".gguf")
		if code, _, errOut := runCLI("model", "new", "--arch", tc.arch, "--tokenizer", tc.tokenizer, "--dim", "64", "--layers", "6", "--heads", "4", "--kv-heads", "2",
			"--head-dim", "32", "--vocab", "600", "--context", "128", "-o", path); code != 0 {
			t.Fatalf("model new --arch %s: %s", tc.arch, errOut)
		}
		code, out, errOut := runCLI("generate", "--model", path, "--prompt", "hello", "--chat", "--json", "--max-tokens", "4")
		if code != 0 {
			t.Fatalf("generate %s: %s", tc.arch, errOut)
		}
		var res struct {
			PromptTokens []int `json:"prompt_tokens"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%s: %v in %q", tc.arch, err, out)
		}
		if len(res.PromptTokens) < 2 || res.PromptTokens[0] != tc.start[0] || res.PromptTokens[1] != tc.start[1] {
			t.Fatalf("%s: chat prompt %v, want it to open with %v", tc.arch, res.PromptTokens, tc.start)
		}
	}
	code, _, errOut := runCLI("model", "new", "--arch", "phi3", "-o", filepath.Join(dir, "x.gguf"))
	if code != 1 || !strings.Contains(errOut, `architecture "phi3" is not supported`) {
		t.Fatalf("unknown arch: code %d, %q", code, errOut)
	}
}
