// Package tokenizer turns text into token ids and back using the vocabulary
// stored in a GGUF file's metadata: SentencePiece-style ("llama") and GPT-2
// byte-level BPE ("gpt2"), following llama.cpp's behaviour.
package tokenizer

import (
	"container/heap"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/agoranet/agora/engine/gguf"
)

// Token types (tokenizer.ggml.token_type).
const (
	TypeNormal      = 1
	TypeUnknown     = 2
	TypeControl     = 3
	TypeUserDefined = 4
	TypeUnused      = 5
	TypeByte        = 6
)

// Tokenizer encodes and decodes text for one vocabulary.
type Tokenizer struct {
	Model string // "llama" or "gpt2"
	// Pre is the BPE pre-tokenizer (tokenizer.ggml.pre): "default"/"gpt-2"
	// (GPT-2 pattern), "llama3"/"llama-bpe" (Llama-3 pattern) or "qwen2".
	Pre    string
	Tokens []string
	Scores []float32
	Types  []int32
	BOS    int
	EOS    int
	UNK    int
	AddBOS bool
	// AddSpacePrefix: SentencePiece prepends a space (llama default).
	AddSpacePrefix bool
	// EOG are the end-of-generation tokens: EOS, the file's end-of-turn and
	// end-of-message tokens, and the turn enders llama.cpp recognises by
	// their text (<|eot_id|>, <|im_end|>, <end_of_turn>, ...). A chat
	// answer ends at any of them.
	EOG []int

	toID     map[string]int
	byteTok  [256]int
	special  []int // control/user-defined tokens, longest first, for parse-special
	bpeRanks map[[2]string]int
}

// FromGGUF reads the tokenizer from a model file's metadata.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	model, err := f.String("tokenizer.ggml.model")
	if err != nil {
		return nil, err
	}
	tv, ok := f.Get("tokenizer.ggml.tokens")
	tokens, isStr := tv.V.([]string)
	if !ok || !isStr || len(tokens) == 0 {
		return nil, fmt.Errorf("tokenizer.ggml.tokens missing or not a string array")
	}
	t := &Tokenizer{Model: model, Tokens: tokens, UNK: -1, BOS: -1, EOS: -1}
	if v, ok := f.Get("tokenizer.ggml.scores"); ok {
		s, ok := v.V.([]float32)
		if !ok || len(s) != len(tokens) {
			return nil, fmt.Errorf("tokenizer.ggml.scores must be %d float32", len(tokens))
		}
		t.Scores = s
	}
	if v, ok := f.Get("tokenizer.ggml.token_type"); ok {
		s, ok := v.V.([]int32)
		if !ok || len(s) != len(tokens) {
			return nil, fmt.Errorf("tokenizer.ggml.token_type must be %d int32", len(tokens))
		}
		t.Types = s
	}
	idOf := func(key string) (int, error) {
		if _, ok := f.Get(key); !ok {
			return -1, nil
		}
		v, err := f.Uint(key)
		if err != nil {
			return -1, err
		}
		if v >= uint64(len(tokens)) {
			return -1, fmt.Errorf("%s = %d outside the vocabulary", key, v)
		}
		return int(v), nil
	}
	if t.BOS, err = idOf("tokenizer.ggml.bos_token_id"); err != nil {
		return nil, err
	}
	if t.EOS, err = idOf("tokenizer.ggml.eos_token_id"); err != nil {
		return nil, err
	}
	if t.UNK, err = idOf("tokenizer.ggml.unknown_token_id"); err != nil {
		return nil, err
	}
	for _, key := range []string{"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"} {
		id, err := idOf(key)
		if err != nil {
			return nil, err
		}
		if id >= 0 {
			t.EOG = append(t.EOG, id)
		}
	}
	switch model {
	case "llama":
		t.AddBOS, t.AddSpacePrefix = true, true
	case "gpt2":
		t.AddBOS = false
		t.Pre = "default"
		if p, err := f.String("tokenizer.ggml.pre"); err == nil {
			switch p {
			case "default", "gpt-2", "llama3", "llama-bpe", "smaug-bpe", "qwen2":
				t.Pre = p
			default:
				return nil, fmt.Errorf("BPE pre-tokenizer %q is not supported (default, gpt-2, llama3/llama-bpe, qwen2 are)", p)
			}
		}
		mv, ok := f.Get("tokenizer.ggml.merges")
		merges, isStr := mv.V.([]string)
		if !ok || !isStr {
			return nil, fmt.Errorf("gpt2 tokenizer needs tokenizer.ggml.merges")
		}
		t.bpeRanks = make(map[[2]string]int, len(merges))
		for i, m := range merges {
			a, b, ok := strings.Cut(m, " ")
			if !ok {
				return nil, fmt.Errorf("merge %d %q is not two space-separated pieces", i, m)
			}
			t.bpeRanks[[2]string{a, b}] = i
		}
	default:
		return nil, fmt.Errorf("tokenizer model %q is not supported (llama, gpt2 are)", model)
	}
	if v, ok := f.Get("tokenizer.ggml.add_bos_token"); ok {
		if b, ok := v.V.(bool); ok {
			t.AddBOS = b
		}
	}
	if v, ok := f.Get("tokenizer.ggml.add_space_prefix"); ok {
		if b, ok := v.V.(bool); ok {
			t.AddSpacePrefix = b
		}
	}
	t.index()
	return t, nil
}

// eogTexts are the turn enders llama.cpp treats as end of generation
// whatever the file's metadata says (llama-vocab.cpp).
var eogTexts = map[string]bool{
	"<|eot_id|>": true, "<|im_end|>": true, "<|end|>": true, "<|return|>": true, "<|call|>": true,
	"<end_of_turn>": true, "<|endoftext|>": true, "<|eom_id|>": true, "<EOT>": true, "_<EOT>": true,
	"<|end_of_text|>": true, "<end_of_utterance>": true,
}

// IsEOG reports whether id ends a generation.
func (t *Tokenizer) IsEOG(id int) bool {
	if id == t.EOS && id >= 0 {
		return true
	}
	for _, e := range t.EOG {
		if e == id {
			return true
		}
	}
	return false
}

func (t *Tokenizer) index() {
	t.toID = make(map[string]int, len(t.Tokens))
	for i := range t.byteTok {
		t.byteTok[i] = -1
	}
	for i, s := range t.Tokens {
		if _, dup := t.toID[s]; !dup {
			t.toID[s] = i
		}
		typ := t.typ(i)
		if typ == TypeByte && len(s) == 6 && strings.HasPrefix(s, "<0x") && s[5] == '>' {
			if b, err := strconv.ParseUint(s[3:5], 16, 8); err == nil {
				t.byteTok[b] = i
			}
		}
		eog := eogTexts[s]
		if eog && !t.IsEOG(i) {
			t.EOG = append(t.EOG, i)
		}
		// llama.cpp makes a turn ender a control token whatever its type.
		if typ == TypeControl || typ == TypeUserDefined || eog {
			t.special = append(t.special, i)
		}
	}
	// longest special tokens first, so "<|im_start|>" wins over "<"
	for i := 1; i < len(t.special); i++ {
		for j := i; j > 0 && len(t.Tokens[t.special[j]]) > len(t.Tokens[t.special[j-1]]); j-- {
			t.special[j], t.special[j-1] = t.special[j-1], t.special[j]
		}
	}
}

func (t *Tokenizer) typ(i int) int32 {
	if t.Types == nil {
		return TypeNormal
	}
	return t.Types[i]
}

// VocabSize is the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.Tokens) }

// ID returns a token's id.
func (t *Tokenizer) ID(piece string) (int, bool) {
	id, ok := t.toID[piece]
	return id, ok
}

// IsControl reports whether id is a control token (BOS, EOS, chat markers).
func (t *Tokenizer) IsControl(id int) bool { return t.typ(id) == TypeControl }

// Encode tokenizes text. With parseSpecial, control and user-defined tokens
// written literally in the text (e.g. "<|im_start|>") become those tokens;
// otherwise they are tokenized as plain text.
func (t *Tokenizer) Encode(text string, addBOS, parseSpecial bool) []int {
	var out []int
	if addBOS && t.BOS >= 0 {
		out = append(out, t.BOS)
	}
	for len(text) > 0 {
		cut, sp := len(text), -1
		if parseSpecial {
			cut, sp = t.nextSpecial(text)
		}
		// Every run of text is either the first or follows a special
		// token, and SentencePiece prefixes each with a space (llama.cpp:
		// "<s>[INST]" is <s> ▁[ INST ]), so every run is encoded as first.
		if cut > 0 {
			out = append(out, t.encodeText(text[:cut], true)...)
		}
		if sp < 0 {
			break
		}
		out = append(out, sp)
		text = text[cut+len(t.Tokens[sp]):]
	}
	return out
}

func (t *Tokenizer) nextSpecial(text string) (int, int) {
	best, bestID := len(text), -1
	for _, id := range t.special {
		s := t.Tokens[id]
		if s == "" {
			continue
		}
		if i := strings.Index(text, s); i >= 0 && i < best {
			best, bestID = i, id
		}
	}
	return best, bestID
}

func (t *Tokenizer) encodeText(text string, first bool) []int {
	if t.Model == "gpt2" {
		return t.encodeBPE(text)
	}
	return t.encodeSPM(text, first)
}

// --- SentencePiece (llama) ---

type symbol struct {
	text       string
	prev, next int
}

type bigram struct {
	left, right int
	score       float32
	size        int
}

type bigramQueue []bigram

func (q bigramQueue) Len() int { return len(q) }
func (q bigramQueue) Less(i, j int) bool {
	if q[i].score != q[j].score {
		return q[i].score > q[j].score
	}
	return q[i].left < q[j].left
}
func (q bigramQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *bigramQueue) Push(x any)   { *q = append(*q, x.(bigram)) }
func (q *bigramQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

func (t *Tokenizer) encodeSPM(text string, first bool) []int {
	if first && t.AddSpacePrefix {
		text = " " + text
	}
	text = strings.ReplaceAll(text, " ", "▁")
	var syms []symbol
	for i := 0; i < len(text); {
		_, n := utf8.DecodeRuneInString(text[i:])
		syms = append(syms, symbol{text: text[i : i+n], prev: len(syms) - 1, next: len(syms) + 1})
		i += n
	}
	if len(syms) == 0 {
		return nil
	}
	syms[len(syms)-1].next = -1
	q := &bigramQueue{}
	try := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		s := syms[l].text + syms[r].text
		if id, ok := t.toID[s]; ok {
			var sc float32
			if t.Scores != nil {
				sc = t.Scores[id]
			}
			heap.Push(q, bigram{left: l, right: r, score: sc, size: len(s)})
		}
	}
	for i := 1; i < len(syms); i++ {
		try(i-1, i)
	}
	for q.Len() > 0 {
		b := heap.Pop(q).(bigram)
		l, r := &syms[b.left], &syms[b.right]
		if l.text == "" || r.text == "" || len(l.text)+len(r.text) != b.size || l.next != b.right {
			continue // stale
		}
		l.text += r.text
		r.text = ""
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		try(l.prev, b.left)
		try(b.left, l.next)
	}
	var out []int
	for i := 0; i >= 0 && i < len(syms); i = syms[i].next {
		out = t.resegment(syms[i].text, out)
	}
	return out
}

// resegment emits a symbol's token, or its bytes when it is not in the vocabulary.
func (t *Tokenizer) resegment(s string, out []int) []int {
	if id, ok := t.toID[s]; ok {
		return append(out, id)
	}
	for i := 0; i < len(s); i++ {
		if id := t.byteTok[s[i]]; id >= 0 {
			out = append(out, id)
		} else if t.UNK >= 0 {
			out = append(out, t.UNK)
		}
	}
	return out
}

// Piece returns the bytes a token stands for.
func (t *Tokenizer) Piece(id int) string {
	if id < 0 || id >= len(t.Tokens) {
		return ""
	}
	s := t.Tokens[id]
	switch t.typ(id) {
	case TypeControl, TypeUnknown, TypeUnused:
		return ""
	case TypeByte:
		if b, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(s, "<0x"), ">"), 16, 8); err == nil {
			return string([]byte{byte(b)})
		}
	}
	if t.Model == "gpt2" {
		return decodeByteLevel(s)
	}
	return strings.ReplaceAll(s, "▁", " ")
}

// Decode turns ids into text (control tokens are skipped). The space that
// SentencePiece prepends is removed.
func (t *Tokenizer) Decode(ids []int) string {
	var sb strings.Builder
	for _, id := range ids {
		sb.WriteString(t.Piece(id))
	}
	s := sb.String()
	if t.Model == "llama" && t.AddSpacePrefix {
		s = strings.TrimPrefix(s, " ")
	}
	return s
}
