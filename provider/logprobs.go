package provider

import (
	json "github.com/goccy/go-json"

	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/protocol/inference"
)

// TokenLogprobs are generated tokens with their log-probs: each token's
// bytes, its log-prob and the best alternatives at its position (best
// first).
type TokenLogprobs struct {
	Pieces   [][]byte
	Logprobs []float32
	Top      [][]inference.Alt
}

// Len is the number of tokens.
func (t *TokenLogprobs) Len() int { return len(t.Pieces) }

func (t *TokenLogprobs) add(piece []byte, lp float32, top []inference.Alt) {
	t.Pieces, t.Logprobs, t.Top = append(t.Pieces, piece), append(t.Logprobs, lp), append(t.Top, top)
}

// addNative adds a token the native engine generated.
func (t *TokenLogprobs) addNative(tr native.TokenResult) {
	top := make([]inference.Alt, len(tr.Top))
	for i, a := range tr.Top {
		top[i] = inference.Alt{Token: []byte(a.Text), Logprob: a.Logprob}
	}
	t.add([]byte(tr.Text), tr.Logprob, top)
}

// Delta is generated text as it is produced, with the tokens it completes
// when log-probs were asked for. More reports that the next delta is
// already available without waiting, so the receiver may hold this one back
// and write both at once (one syscall, not one per token) without delaying
// anything.
type Delta struct {
	Text   string
	Tokens TokenLogprobs
	More   bool
}

// DeltaFunc receives deltas as they are produced.
type DeltaFunc func(Delta) error

func byteInts(b []byte) []int {
	out := make([]int, len(b))
	for i, c := range b {
		out[i] = int(c)
	}
	return out
}

type chatTop struct {
	Token   string  `json:"token"`
	Logprob float32 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

type chatToken struct {
	chatTop
	TopLogprobs []chatTop `json:"top_logprobs"`
}

// chatLogprobs renders tokens as a chat choice's logprobs, with up to n
// alternatives each: {"content": [{token, logprob, bytes, top_logprobs}]}.
// bytes are exact; token is the bytes as a string (a token may end inside
// a UTF-8 character).
func chatLogprobs(t TokenLogprobs, n int) json.RawMessage {
	content := make([]chatToken, t.Len())
	for i := range content {
		content[i] = chatToken{chatTop: chatTop{string(t.Pieces[i]), t.Logprobs[i], byteInts(t.Pieces[i])}, TopLogprobs: []chatTop{}}
		for _, a := range t.Top[i][:min(n, len(t.Top[i]))] {
			content[i].TopLogprobs = append(content[i].TopLogprobs, chatTop{string(a.Token), a.Logprob, byteInts(a.Token)})
		}
	}
	bz, _ := json.Marshal(map[string][]chatToken{"content": content})
	return bz
}

// textLogprobs renders tokens as a text completion choice's logprobs (the
// legacy arrays), with up to n alternatives each (none: top_logprobs is
// null) and text offsets counted in bytes from offset.
func textLogprobs(t TokenLogprobs, n, offset int) json.RawMessage {
	out := struct {
		Tokens        []string             `json:"tokens"`
		TokenLogprobs []float32            `json:"token_logprobs"`
		TopLogprobs   []map[string]float32 `json:"top_logprobs"`
		TextOffset    []int                `json:"text_offset"`
	}{Tokens: []string{}, TokenLogprobs: []float32{}, TextOffset: []int{}}
	for i, p := range t.Pieces {
		out.Tokens = append(out.Tokens, string(p))
		out.TokenLogprobs = append(out.TokenLogprobs, t.Logprobs[i])
		out.TextOffset = append(out.TextOffset, offset)
		offset += len(p)
		if n > 0 {
			m := map[string]float32{}
			for _, a := range t.Top[i][:min(n, len(t.Top[i]))] {
				if _, dup := m[string(a.Token)]; !dup { // keys are strings: keep the better of two spellings
					m[string(a.Token)] = a.Logprob
				}
			}
			out.TopLogprobs = append(out.TopLogprobs, m)
		}
	}
	bz, _ := json.Marshal(out)
	return bz
}
