package provider

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
)

// TestNativeChatUsesTemplate: a chat request is rendered by the model's own
// Jinja template (here the Llama-2 one generated models carry: the system
// prompt folds into the first turn) and tokenized with its special tokens;
// a conversation the template rejects is a request error naming why.
func TestNativeChatUsesTemplate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := native.WriteRandomModel(path, native.GenOptions{Dim: 64, Layers: 1, Heads: 4, Vocab: 600, Context: 256, Seed: 7, Type: gguf.F32}); err != nil {
		t.Fatal(err)
	}
	b, err := NewNativeBackend([]string{path}, native.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	nm := b.models["tiny"]
	msgs := []native.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hello world"}}
	p, err := b.Prepare("tiny", &InferenceRequest{Chat: true, Messages: msgs, MaxTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	want := nm.tok.Encode("<s>[INST] <<SYS>>\nbe brief\n<</SYS>>\n\nhello world [/INST]", false, true)
	if want[0] != nm.tok.BOS || !reflect.DeepEqual(p.PromptIDs, want) {
		t.Fatalf("chat prompt %v, want %v", p.PromptIDs, want)
	}
	_, err = b.Prepare("tiny", &InferenceRequest{Chat: true, Messages: []native.Message{{Role: "user", Content: "a"}, {Role: "user", Content: "b"}}, MaxTokens: 4})
	if err == nil || !strings.Contains(err.Error(), "roles must alternate") {
		t.Fatalf("non-alternating chat: %v", err)
	}
}
