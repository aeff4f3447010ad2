package provider

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
	"github.com/agoranet/agora/protocol/inference"
)

// ModelSpec is a model a backend serves: its name, the content hash it is
// registered under on chain, and its context length.
type ModelSpec struct {
	Name          string
	Hash          [32]byte
	ContextLength int
}

// InferenceRequest is one request to generate text (a chat or a
// completion), already validated: what a Backend prepares and runs.
type InferenceRequest struct {
	Chat      bool
	Messages  []native.Message
	Prompt    string
	MaxTokens int
	Params    native.SampleParams
	// Logprobs asks for the tokens' log-probs with TopLogprobs
	// alternatives each (Output's Pieces, Logprobs and Top; Delta.Tokens).
	Logprobs    bool
	TopLogprobs int
}

// Prepared is an inference request whose prompt is tokenized, so it can be priced.
type Prepared struct {
	Model     string
	ModelHash [32]byte // the hash the model is registered under
	// PromptTokens is the prompt length, or for a backend that tokenizes
	// remotely an upper bound (the exact count comes back in Output).
	PromptTokens int
	PromptIDs    []int // when the backend tokenizes locally
	MaxTokens    int
	Params       native.SampleParams
	run          func(ctx context.Context, onDelta DeltaFunc) (*Output, error)
}

// Output is what a backend generated.
type Output struct {
	PromptTokens     int
	CompletionTokens int
	Text             string
	OutputIDs        []int
	Logprobs         []float32
	FinishReason     string
	// Cancelled: the request was cancelled mid-generation (its client went
	// away, or the provider is stopping) and the output is what was
	// generated until then (FinishReason FinishCancelled). Only streams
	// return one; it is billed and recorded like any other.
	Cancelled bool

	// The output tokens as bytes and the best alternatives per token: on
	// the tolerance path (Verify = inference.VerifyTolerance) what the backend
	// reported, and whenever the request asked for log-probs.
	Verify string
	Pieces [][]byte
	Top    [][]inference.Alt
}

// Backend is an inference engine behind the provider.
type Backend interface {
	Models() []ModelSpec
	Prepare(model string, ir *InferenceRequest) (*Prepared, error)
}

// Errors a backend returns for bad requests.
var (
	ErrUnknownModel  = errors.New("unknown model")
	ErrPromptTooLong = errors.New("prompt too long")
)

// NativeBackend serves GGUF models with the built-in engine.
type NativeBackend struct {
	models map[string]*nativeModel
	specs  []ModelSpec
}

type nativeModel struct {
	spec ModelSpec
	m    *native.Model
	tok  *tokenizer.Tokenizer
	chat *native.ChatTemplate
}

// NewNativeBackend loads GGUF files; each is served under its file name
// without extension and registered under the sha256 of the file.
func NewNativeBackend(paths []string, opts native.Options) (*NativeBackend, error) {
	b := &NativeBackend{models: map[string]*nativeModel{}}
	for _, p := range paths {
		h, err := fileHash(p)
		if err != nil {
			return nil, err
		}
		m, err := native.Load(p, opts)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", p, err)
		}
		tok, err := tokenizer.FromGGUF(m.File)
		if err != nil {
			return nil, fmt.Errorf("tokenizer of %s: %w", p, err)
		}
		chat, err := native.ChatTemplateOf(m.File, tok)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		name := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		spec := ModelSpec{Name: name, Hash: h, ContextLength: m.Config.ContextLen}
		b.models[name] = &nativeModel{spec: spec, m: m, tok: tok, chat: chat}
		b.specs = append(b.specs, spec)
	}
	return b, nil
}

func fileHash(path string) ([32]byte, error) {
	var h [32]byte
	f, err := os.Open(path)
	if err != nil {
		return h, err
	}
	defer f.Close()
	d := sha256.New()
	if _, err := io.Copy(d, f); err != nil {
		return h, err
	}
	copy(h[:], d.Sum(nil))
	return h, nil
}

// Close releases the models.
func (b *NativeBackend) Close() {
	for _, m := range b.models {
		m.m.Close()
	}
}

// Models lists the served models.
func (b *NativeBackend) Models() []ModelSpec { return b.specs }

// Prepare tokenizes the prompt and checks it fits the context.
func (b *NativeBackend) Prepare(model string, ir *InferenceRequest) (*Prepared, error) {
	nm, ok := b.models[model]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownModel, model)
	}
	ids, maxTok, err := promptIDs(nm.tok, nm.chat, ir, nm.spec.ContextLength)
	if err != nil {
		return nil, err
	}
	p := &Prepared{Model: model, ModelHash: nm.spec.Hash, PromptTokens: len(ids), PromptIDs: ids, MaxTokens: maxTok, Params: ir.Params}
	p.Params.MaxTokens = maxTok
	p.run = func(ctx context.Context, onDelta DeltaFunc) (*Output, error) {
		out := &Output{}
		var cbErr error
		var pending []byte        // bytes of a character split across tokens
		var pendTok TokenLogprobs // the tokens of pending (log-probs asked for)
		params := p.Params
		if ir.Logprobs {
			params.TopLogprobs = min(ir.TopLogprobs, 20)
		}
		// A cancelled request stops at the token in hand: that token was
		// generated, so it is still sent (the client may be there: a stop
		// cuts requests short) and billed, and the output is a prefix.
		stopped := false // by a cancellation or a failed write, not by the model
		res, err := nm.m.Generate(nm.tok, ids, params, func(tr native.TokenResult) bool {
			if onDelta == nil {
				return ctx.Err() == nil
			}
			if ir.Logprobs {
				pendTok.addNative(tr)
			}
			if tr.Text != "" {
				pending = append(pending, tr.Text...)
				n := completeUTF8(pending)
				if n > 0 {
					if cbErr = onDelta(Delta{Text: string(pending[:n]), Tokens: pendTok}); cbErr != nil {
						stopped = true
						return false
					}
					pending, pendTok = append(pending[:0], pending[n:]...), TokenLogprobs{}
				}
			}
			stopped = ctx.Err() != nil
			return !stopped
		})
		if err == nil && cbErr == nil && onDelta != nil && (len(pending) > 0 || pendTok.Len() > 0) {
			cbErr = onDelta(Delta{Text: string(pending), Tokens: pendTok}) // whatever is left, even if not valid UTF-8
		}
		if err != nil {
			return nil, err
		}
		// A stream cut short (its request cancelled, or its client gone:
		// the write failed) returns the tokens generated, to be billed; a
		// response not streamed delivers nothing until its end, so it is
		// not.
		if onDelta == nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		cut := stopped
		out.Text, out.FinishReason = res.Text, res.FinishReason
		if cut {
			out.FinishReason, out.Cancelled = FinishCancelled, true
		}
		out.PromptTokens, out.CompletionTokens = len(ids), len(res.Tokens)
		var lps TokenLogprobs
		for _, tr := range res.Tokens {
			out.OutputIDs = append(out.OutputIDs, tr.ID)
			out.Logprobs = append(out.Logprobs, tr.Logprob)
			if ir.Logprobs { // the tokens' bytes and alternatives only when asked for
				lps.addNative(tr)
			}
		}
		out.Pieces, out.Top = lps.Pieces, lps.Top
		return out, nil
	}
	return p, nil
}

// promptIDs tokenizes a request's prompt (a chat through the model's template)
// and bounds its output by the context left.
func promptIDs(tok *tokenizer.Tokenizer, chat *native.ChatTemplate, ir *InferenceRequest, contextLength int) ([]int, int, error) {
	var ids []int
	if ir.Chat {
		var err error
		if ids, err = chat.Prompt(tok, ir.Messages); err != nil {
			return nil, 0, err
		}
	} else {
		ids = tok.Encode(ir.Prompt, tok.AddBOS, false)
	}
	if len(ids) == 0 {
		return nil, 0, fmt.Errorf("%w: empty prompt", ErrPromptTooLong)
	}
	if len(ids)+1 > contextLength {
		return nil, 0, fmt.Errorf("%w: %d prompt tokens, context length %d", ErrPromptTooLong, len(ids), contextLength)
	}
	return ids, min(ir.MaxTokens, contextLength-len(ids)), nil
}

// Capabilities are what the native engine serves, registered on chain.
func (b *NativeBackend) Capabilities() []string {
	return []string{"chat", "completions", "stream", "logprobs"}
}

// Run executes a prepared request.
func (p *Prepared) Run(ctx context.Context, onDelta DeltaFunc) (*Output, error) {
	return p.run(ctx, onDelta)
}

// completeUTF8 returns the length of the longest prefix of b that does not
// end inside a multi-byte UTF-8 sequence (a sequence split across tokens is
// held back until its last byte arrives).
func completeUTF8(b []byte) int {
	for back := 1; back <= 3 && back <= len(b); back++ {
		c := b[len(b)-back]
		if c&0xC0 == 0x80 { // continuation byte: keep looking for the lead
			continue
		}
		need := 0
		switch {
		case c&0xE0 == 0xC0:
			need = 2
		case c&0xF0 == 0xE0:
			need = 3
		case c&0xF8 == 0xF0:
			need = 4
		}
		if need > back {
			return len(b) - back // the lead's sequence is incomplete
		}
		return len(b)
	}
	return len(b)
}
