package provider

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
	"github.com/agoranet/agora/internal/hop"
	"github.com/agoranet/agora/internal/oai"
	"github.com/agoranet/agora/verify"
)

// OpenAIBackend forwards requests to an existing OpenAI-compatible server
// (llama.cpp server, vLLM, Ollama, ...).
//
// A model is declared either by name alone, registered on chain under
// sha256("openai:" + name) and unverifiable by validators, or as
// NAME=FILE.gguf: the GGUF file holds the weights the backend serves, the
// model is registered under the file's sha256 like a native one, and its
// requests are verifiable on the tolerance path. For those the adapter
// tokenizes the prompt itself (chat template included), sends the token ids
// to the backend's /completions with log-probs requested, and stores the
// output tokens, their log-probs and the top alternatives in the transcript.
type OpenAIBackend struct {
	base   string
	apiKey string
	specs  []ModelSpec
	names  map[string]*adapterRef // nil: an unverifiable model
	httpc  *hop.Client
}

// adapterRef is the reference GGUF of a verifiable adapter model.
type adapterRef struct {
	m     *native.Model
	tok   *tokenizer.Tokenizer
	vocab *verify.Vocab
	chat  *native.ChatTemplate
}

// AdapterTopLogprobs is how many alternatives per token the adapter asks a
// backend for on verifiable models.
const AdapterTopLogprobs = 5

// NewOpenAIBackend serves models (NAME, or NAME=FILE.gguf for a verifiable
// one) from the server at baseURL (e.g. http://127.0.0.1:8081/v1);
// contextLength applies to models without a GGUF.
func NewOpenAIBackend(baseURL, apiKey string, models []string, contextLength int) (*OpenAIBackend, error) {
	if contextLength <= 0 {
		contextLength = 4096
	}
	b := &OpenAIBackend{base: strings.TrimSuffix(baseURL, "/"), apiKey: apiKey, names: map[string]*adapterRef{},
		httpc: hop.New(256, nil)}
	for _, decl := range models {
		name, path, verifiable := strings.Cut(decl, "=")
		if name == "" {
			b.Close()
			return nil, fmt.Errorf("backend model %q: empty name", decl)
		}
		if _, dup := b.names[name]; dup {
			b.Close()
			return nil, fmt.Errorf("backend model %q declared twice", name)
		}
		if !verifiable {
			b.specs = append(b.specs, ModelSpec{Name: name, Hash: sha256.Sum256([]byte("openai:" + name)), ContextLength: contextLength})
			b.names[name] = nil
			continue
		}
		h, err := fileHash(path)
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("backend model %s: %w", name, err)
		}
		m, err := native.Load(path, native.Options{})
		if err != nil {
			b.Close()
			return nil, fmt.Errorf("backend model %s: %w", name, err)
		}
		tok, err := tokenizer.FromGGUF(m.File)
		if err != nil {
			m.Close()
			b.Close()
			return nil, fmt.Errorf("backend model %s: tokenizer: %w", name, err)
		}
		chat, err := native.ChatTemplateOf(m.File, tok)
		if err != nil {
			m.Close()
			b.Close()
			return nil, fmt.Errorf("backend model %s: %w", name, err)
		}
		b.names[name] = &adapterRef{m: m, tok: tok, vocab: verify.NewVocab(tok), chat: chat}
		b.specs = append(b.specs, ModelSpec{Name: name, Hash: h, ContextLength: m.Config.ContextLen})
	}
	return b, nil
}

// Close releases the reference models' files and idle backend connections.
func (b *OpenAIBackend) Close() {
	b.httpc.CloseIdle()
	for _, r := range b.names {
		if r != nil {
			r.m.Close()
		}
	}
}

// Models lists the served models.
func (b *OpenAIBackend) Models() []ModelSpec { return b.specs }

// Capabilities are what the adapter serves, registered on chain: log-probs
// only when a verifiable model shows the backend reports them.
func (b *OpenAIBackend) Capabilities() []string {
	caps := []string{"chat", "completions", "stream"}
	for _, r := range b.names {
		if r != nil {
			return append(caps, "logprobs")
		}
	}
	return caps
}

// Prepare bounds the prompt's token count by its length in bytes (a token
// is at least one byte), which bounds what the request may cost; the
// backend's usage gives the exact count. A verifiable model's prompt is
// tokenized here, so its count is exact.
func (b *OpenAIBackend) Prepare(model string, ir *InferenceRequest) (*Prepared, error) {
	ref, ok := b.names[model]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownModel, model)
	}
	var spec ModelSpec
	for _, s := range b.specs {
		if s.Name == model {
			spec = s
		}
	}
	if ref != nil {
		return b.prepareVerifiable(spec, ref, ir)
	}
	bound := 8
	if ir.Chat {
		for _, m := range ir.Messages {
			bound += len(m.Content) + len(m.Role) + 8
		}
	} else {
		bound += len(ir.Prompt)
	}
	ctxLen := spec.ContextLength
	maxTok := ir.MaxTokens
	if maxTok > ctxLen {
		maxTok = ctxLen
	}
	p := &Prepared{Model: model, ModelHash: spec.Hash, PromptTokens: bound, MaxTokens: maxTok, Params: ir.Params}
	p.run = func(ctx context.Context, onDelta DeltaFunc) (*Output, error) {
		return b.run(ctx, model, ir, maxTok, bound, onDelta)
	}
	return p, nil
}

type upstreamReq struct {
	Model         string        `json:"model"`
	Messages      []oai.Message `json:"messages,omitempty"`
	Prompt        *string       `json:"prompt,omitempty"`
	MaxTokens     int           `json:"max_tokens"`
	Temperature   float64       `json:"temperature"`
	TopP          float64       `json:"top_p,omitempty"`
	Seed          uint64        `json:"seed"`
	Stop          []string      `json:"stop,omitempty"`
	Stream        bool          `json:"stream,omitempty"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options,omitempty"`
	Logprobs    any  `json:"logprobs,omitempty"`     // chat: true; text: the alternatives
	TopLogprobs *int `json:"top_logprobs,omitempty"` // chat
}

// post sends v as JSON to the backend's path and returns a 200 response
// (the caller closes its body); any other status is an error carrying the
// backend's message.
func (b *OpenAIBackend) post(ctx context.Context, path string, v any) (*http.Response, error) {
	body, _ := json.Marshal(v)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if b.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+b.apiKey)
	}
	resp, err := b.httpc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		eb, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("backend answered %d: %s", resp.StatusCode, oai.ParseError(resp.StatusCode, eb).Message)
	}
	return resp, nil
}

func (b *OpenAIBackend) run(ctx context.Context, model string, ir *InferenceRequest, maxTok, bound int, onDelta DeltaFunc) (*Output, error) {
	ur := upstreamReq{Model: model, MaxTokens: maxTok, Temperature: ir.Params.Temperature, TopP: ir.Params.TopP, Seed: ir.Params.Seed, Stop: ir.Params.Stop, Stream: onDelta != nil}
	path := "/completions"
	if ir.Chat {
		path = "/chat/completions"
		for _, m := range ir.Messages {
			ur.Messages = append(ur.Messages, oai.Message{Role: m.Role, Content: oai.Content(m.Content)})
		}
	} else {
		ur.Prompt = &ir.Prompt
	}
	if ur.Stream {
		ur.StreamOptions = &struct {
			IncludeUsage bool `json:"include_usage"`
		}{true}
	}
	if ir.Logprobs {
		if ir.Chat {
			n := ir.TopLogprobs
			ur.Logprobs, ur.TopLogprobs = true, &n
		} else {
			ur.Logprobs = ir.TopLogprobs
		}
	}
	// logprobsOf adds a choice's log-probs (asked for) to t.
	logprobsOf := func(c oai.Choice, t *TokenLogprobs) error {
		if !ir.Logprobs || len(c.Logprobs) == 0 || string(c.Logprobs) == "null" {
			return nil
		}
		var w wireLogprobs
		if err := json.Unmarshal(c.Logprobs, &w); err != nil {
			return fmt.Errorf("backend sent invalid logprobs: %w", err)
		}
		return w.appendTo(t)
	}
	resp, err := b.post(ctx, path, ur)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := &Output{FinishReason: "stop"}
	var usage *oai.Usage
	textOf := func(c oai.Choice) string {
		switch {
		case c.Message != nil && c.Message.Content != nil:
			return *c.Message.Content
		case c.Delta != nil && c.Delta.Content != nil:
			return *c.Delta.Content
		case c.Text != nil:
			return *c.Text
		}
		return ""
	}
	if !ur.Stream {
		var r oai.Response
		if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&r); err != nil || len(r.Choices) == 0 {
			return nil, errors.New("backend returned an invalid completion")
		}
		out.Text = textOf(r.Choices[0])
		if r.Choices[0].FinishReason != nil {
			out.FinishReason = *r.Choices[0].FinishReason
		}
		var lps TokenLogprobs
		if err := logprobsOf(r.Choices[0], &lps); err != nil {
			return nil, err
		}
		out.Pieces, out.Logprobs, out.Top = lps.Pieces, lps.Logprobs, lps.Top
		usage = r.Usage
	} else {
		var sb strings.Builder
		chunks := 0
		err := readSSE(resp.Body, func(data []byte, more bool) error {
			var c oai.Response
			if err := json.Unmarshal(data, &c); err != nil {
				return errors.New("backend sent an invalid stream chunk")
			}
			if c.Usage != nil {
				usage = c.Usage
			}
			for _, ch := range c.Choices {
				var lps TokenLogprobs
				if err := logprobsOf(ch, &lps); err != nil {
					return err
				}
				out.Pieces, out.Logprobs, out.Top = append(out.Pieces, lps.Pieces...), append(out.Logprobs, lps.Logprobs...), append(out.Top, lps.Top...)
				if t := textOf(ch); t != "" || lps.Len() > 0 {
					sb.WriteString(t)
					chunks++
					if err := onDelta(Delta{Text: t, Tokens: lps, More: more}); err != nil {
						return err
					}
				}
				if ch.FinishReason != nil {
					out.FinishReason = *ch.FinishReason
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out.Text = sb.String()
		if usage == nil { // a backend without stream usage: count chunks
			usage = &oai.Usage{PromptTokens: bound, CompletionTokens: chunks}
		}
	}
	if usage == nil {
		return nil, errors.New("backend reported no usage")
	}
	if ir.Logprobs && len(out.Pieces) == 0 && out.Text != "" {
		return nil, errors.New("log-probs were asked for and the backend returned none")
	}
	// Never bill beyond what was pre-authorised.
	out.PromptTokens = min(usage.PromptTokens, bound)
	out.CompletionTokens = min(usage.CompletionTokens, maxTok)
	return out, nil
}
