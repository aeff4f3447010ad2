package tokenizer

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agoranet/agora/engine/gguf"
)

// A minimal SentencePiece vocabulary written by hand: the generated models'
// vocabularies are tested in engine/native.
func spmFile(t testing.TB) *gguf.File {
	var w gguf.Writer
	tokens := []string{"<unk>", "<s>", "</s>"}
	types := []int32{TypeUnknown, TypeControl, TypeControl}
	for b := 0; b < 256; b++ {
		tokens = append(tokens, "<0x"+hex2(b)+">")
		types = append(types, TypeByte)
	}
	for _, p := range []string{"▁", "h", "e", "l", "o", "▁h", "ll", "▁he", "llo", "▁hello"} {
		tokens = append(tokens, p)
		types = append(types, TypeNormal)
	}
	scores := make([]float32, len(tokens))
	for i := range scores {
		scores[i] = float32(i) // later (longer) pieces win
	}
	w.Set("tokenizer.ggml.model", gguf.String("llama"))
	w.Set("tokenizer.ggml.tokens", gguf.Strings(tokens))
	w.Set("tokenizer.ggml.scores", gguf.Float32s(scores))
	w.Set("tokenizer.ggml.token_type", gguf.Int32s(types))
	w.Set("tokenizer.ggml.bos_token_id", gguf.Uint32(1))
	w.Set("tokenizer.ggml.eos_token_id", gguf.Uint32(2))
	var buf bytes.Buffer
	if err := w.Write(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func hex2(b int) string {
	const d = "0123456789ABCDEF"
	return string([]byte{d[b>>4], d[b&15]})
}

func TestSPMMergesAndByteFallback(t *testing.T) {
	tok, err := FromGGUF(spmFile(t))
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.Encode("hello", true, false)
	if len(ids) != 2 || ids[0] != 1 || tok.Tokens[ids[1]] != "▁hello" {
		t.Fatalf("hello -> %v", ids)
	}
	ids = tok.Encode("hé", false, false) // é is not in the vocabulary: UTF-8 bytes
	if got := tok.Decode(ids); got != "hé" {
		t.Fatalf("byte fallback: %v -> %q", ids, got)
	}
	if tok.Tokens[ids[len(ids)-1]] != "<0xA9>" {
		t.Fatalf("byte tokens %v", ids)
	}
}

func FuzzEncodeDecode(f *testing.F) {
	f.Add("hello world")
	f.Add("\xff\xfe invalid utf8")
	f.Add("<s></s>")
	tok, err := FromGGUF(spmFile(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s, false, true)
		got := tok.Decode(ids)
		if utf8.ValidString(s) && !containsSpecial(s) && got != s && " "+got != " "+s {
			t.Fatalf("%q -> %v -> %q", s, ids, got)
		}
	})
}

func containsSpecial(s string) bool {
	for _, sp := range []string{"<s>", "</s>", "<unk>"} {
		if len(s) >= len(sp) {
			for i := 0; i+len(sp) <= len(s); i++ {
				if s[i:i+len(sp)] == sp {
					return true
				}
			}
		}
	}
	return false
}

func TestPreTokenizers(t *testing.T) {
	text := "Hello world's 12345 apples!!\n\n  x  y\tz"
	cases := map[string][]string{
		"gpt2":   {"Hello", " world", "'s", " 12345", " apples", "!!", "\n\n ", " x", " ", " y", "\t", "z"},
		"llama3": {"Hello", " world", "'s", " ", "123", "45", " apples", "!!\n\n", " ", " x", " ", " y", "\tz"},
		"qwen2":  {"Hello", " world", "'s", " ", "1", "2", "3", "4", "5", " apples", "!!\n\n", " ", " x", " ", " y", "\tz"},
	}
	for name, want := range cases {
		var got []string
		switch name {
		case "gpt2":
			got = preTokenize(text)
		case "llama3":
			got = preTokenizeLlama3(text, 3)
		case "qwen2":
			got = preTokenizeLlama3(text, 1)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want)
		}
	}
}

// TestEndOfGeneration: EOS, the file's end-of-turn/message ids and the
// turn enders llama.cpp recognises by text end a generation; such a token
// is parsed as special even when the file types it as normal.
func TestEndOfGeneration(t *testing.T) {
	var w gguf.Writer
	w.Set("tokenizer.ggml.model", gguf.String("gpt2"))
	w.Set("tokenizer.ggml.tokens", gguf.Strings([]string{"a", "b", "<|eot_id|>", "</s>", "<end_of_turn>", "<x>", "ab"}))
	w.Set("tokenizer.ggml.token_type", gguf.Int32s([]int32{1, 1, 1, 3, 3, 3, 1}))
	w.Set("tokenizer.ggml.merges", gguf.Strings([]string{"a b"}))
	w.Set("tokenizer.ggml.eos_token_id", gguf.Uint32(3))
	w.Set("tokenizer.ggml.eom_token_id", gguf.Uint32(5))
	path := filepath.Join(t.TempDir(), "t.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range []bool{false, false, true, true, true, true, false} {
		if tok.IsEOG(id) != want {
			t.Errorf("IsEOG(%d %q) = %v", id, tok.Tokens[id], !want)
		}
	}
	if got := tok.Encode("a<|eot_id|>b", false, true); len(got) != 3 || got[1] != 2 {
		t.Fatalf("<|eot_id|> typed normal not parsed as special: %v", got)
	}
}
