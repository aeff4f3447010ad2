package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/agoranet/agora/internal/oai"
	"github.com/agoranet/agora/protocol/inference"
	"github.com/agoranet/agora/verify"
)

func (b *OpenAIBackend) prepareVerifiable(spec ModelSpec, ref *adapterRef, ir *InferenceRequest) (*Prepared, error) {
	ids, maxTok, err := promptIDs(ref.tok, ref.chat, ir, spec.ContextLength)
	if err != nil {
		return nil, err
	}
	p := &Prepared{Model: spec.Name, ModelHash: spec.Hash, PromptTokens: len(ids), PromptIDs: ids, MaxTokens: maxTok, Params: ir.Params}
	p.Params.MaxTokens = maxTok
	p.run = func(ctx context.Context, onDelta DeltaFunc) (*Output, error) {
		return b.runVerifiable(ctx, p, ref, ir.Logprobs, onDelta)
	}
	return p, nil
}

// verifiableReq is a /completions request with the prompt as token ids (as
// the OpenAI API allows) and log-probs requested.
type verifiableReq struct {
	Model            string   `json:"model"`
	Prompt           []int    `json:"prompt"`
	MaxTokens        int      `json:"max_tokens"`
	Temperature      float64  `json:"temperature"`
	TopP             float64  `json:"top_p,omitempty"`
	TopK             int      `json:"top_k,omitempty"`
	MinP             float64  `json:"min_p,omitempty"`
	RepeatPenalty    float64  `json:"repeat_penalty,omitempty"`
	FrequencyPenalty float64  `json:"frequency_penalty,omitempty"`
	PresencePenalty  float64  `json:"presence_penalty,omitempty"`
	Seed             uint64   `json:"seed"`
	Stop             []string `json:"stop,omitempty"`
	Logprobs         int      `json:"logprobs"`
	Stream           bool     `json:"stream,omitempty"`
}

// wireLogprobs is a choice's logprobs in either format servers use: the
// chat-style content list (llama.cpp, OpenAI chat) whose bytes are exact, or
// the legacy completions arrays (vLLM), whose token strings are taken as
// UTF-8.
type wireLogprobs struct {
	Content []struct {
		Token       string  `json:"token"`
		Logprob     float32 `json:"logprob"`
		Bytes       []int   `json:"bytes"`
		TopLogprobs []struct {
			Token   string  `json:"token"`
			Logprob float32 `json:"logprob"`
			Bytes   []int   `json:"bytes"`
		} `json:"top_logprobs"`
	} `json:"content"`
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float32            `json:"token_logprobs"`
	TopLogprobs   []map[string]float32 `json:"top_logprobs"`
}

func tokenBytes(tok string, bs []int) ([]byte, error) {
	if bs == nil {
		return []byte(tok), nil
	}
	out := make([]byte, len(bs))
	for i, b := range bs {
		if b < 0 || b > 255 {
			return nil, fmt.Errorf("token byte %d out of range", b)
		}
		out[i] = byte(b)
	}
	return out, nil
}

// appendTo adds the tokens to out.
func (w *wireLogprobs) appendTo(out *TokenLogprobs) error {
	for _, c := range w.Content {
		piece, err := tokenBytes(c.Token, c.Bytes)
		if err != nil {
			return err
		}
		top := []inference.Alt{}
		for _, a := range c.TopLogprobs {
			ab, err := tokenBytes(a.Token, a.Bytes)
			if err != nil {
				return err
			}
			top = append(top, inference.Alt{Token: ab, Logprob: a.Logprob})
		}
		out.Pieces, out.Logprobs, out.Top = append(out.Pieces, piece), append(out.Logprobs, c.Logprob), append(out.Top, top)
	}
	if len(w.Content) > 0 {
		return nil
	}
	if len(w.TokenLogprobs) != len(w.Tokens) || (w.TopLogprobs != nil && len(w.TopLogprobs) != len(w.Tokens)) {
		return errors.New("ragged logprobs arrays")
	}
	for i, t := range w.Tokens {
		top := []inference.Alt{}
		if w.TopLogprobs != nil {
			for tok, lp := range w.TopLogprobs[i] {
				top = append(top, inference.Alt{Token: []byte(tok), Logprob: lp})
			}
			sort.Slice(top, func(a, b int) bool { // a map has no order: best first, then by bytes
				if top[a].Logprob != top[b].Logprob {
					return top[a].Logprob > top[b].Logprob
				}
				return bytes.Compare(top[a].Token, top[b].Token) < 0
			})
		}
		out.Pieces, out.Logprobs, out.Top = append(out.Pieces, []byte(t)), append(out.Logprobs, w.TokenLogprobs[i]), append(out.Top, top)
	}
	return nil
}

type completionChoice struct {
	Text         string        `json:"text"`
	FinishReason *string       `json:"finish_reason"`
	Logprobs     *wireLogprobs `json:"logprobs"`
}

type completionResp struct {
	Choices []completionChoice `json:"choices"`
	Usage   *oai.Usage         `json:"usage"`
}

func (b *OpenAIBackend) runVerifiable(ctx context.Context, p *Prepared, ref *adapterRef, logprobs bool, onDelta DeltaFunc) (*Output, error) {
	pr := p.Params
	ur := verifiableReq{Model: p.Model, Prompt: p.PromptIDs, MaxTokens: p.MaxTokens, Temperature: pr.Temperature, TopP: pr.TopP, TopK: pr.TopK,
		MinP: pr.MinP, RepeatPenalty: pr.RepeatPenalty, FrequencyPenalty: pr.FrequencyPenalty, PresencePenalty: pr.PresencePenalty,
		Seed: pr.Seed, Stop: pr.Stop, Logprobs: AdapterTopLogprobs, Stream: onDelta != nil}
	resp, err := b.post(ctx, "/completions", ur)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := &Output{FinishReason: "stop", Verify: inference.VerifyTolerance}
	var all TokenLogprobs
	// take records a choice; it returns the tokens it added.
	take := func(c completionChoice) (TokenLogprobs, error) {
		if c.FinishReason != nil {
			out.FinishReason = *c.FinishReason
		}
		var lps TokenLogprobs
		if c.Logprobs != nil {
			if err := c.Logprobs.appendTo(&lps); err != nil {
				return lps, fmt.Errorf("backend sent invalid logprobs: %w", err)
			}
		}
		all.Pieces, all.Logprobs, all.Top = append(all.Pieces, lps.Pieces...), append(all.Logprobs, lps.Logprobs...), append(all.Top, lps.Top...)
		return lps, nil
	}
	if !ur.Stream {
		var r completionResp
		if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&r); err != nil || len(r.Choices) == 0 {
			return nil, errors.New("backend returned an invalid completion")
		}
		out.Text = r.Choices[0].Text
		if _, err := take(r.Choices[0]); err != nil {
			return nil, err
		}
	} else {
		var sb strings.Builder
		err := readSSE(resp.Body, func(data []byte, more bool) error {
			var c completionResp
			if err := json.Unmarshal(data, &c); err != nil {
				return errors.New("backend sent an invalid stream chunk")
			}
			for _, ch := range c.Choices {
				lps, err := take(ch)
				if err != nil {
					return err
				}
				if ch.Text != "" || lps.Len() > 0 {
					sb.WriteString(ch.Text)
					if !logprobs {
						lps = TokenLogprobs{} // the client did not ask for them
					}
					if err := onDelta(Delta{Text: ch.Text, Tokens: lps, More: more}); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		out.Text = sb.String()
	}
	out.Pieces, out.Logprobs, out.Top = all.Pieces, all.Logprobs, all.Top
	// The transcript is what validators check: without log-probs for every
	// token this request could not be audited, so it is not served.
	if len(out.Pieces) == 0 && out.Text != "" {
		return nil, errors.New("backend returned no logprobs; a verifiable model needs a backend that reports them")
	}
	if len(out.Pieces) > p.MaxTokens {
		return nil, fmt.Errorf("backend returned %d tokens, %d allowed", len(out.Pieces), p.MaxTokens)
	}
	// What validators will check that needs no model: a backend that
	// reports an unauditable transcript fails the request, unbilled, rather
	// than get this provider slashed for it.
	if err := ref.vocab.CheckShape(verify.Reported{PromptIDs: p.PromptIDs, Pieces: out.Pieces, Logprobs: out.Logprobs, Top: out.Top, Text: []byte(out.Text)}); err != nil {
		return nil, fmt.Errorf("backend returned a transcript validators could not check: %w", err)
	}
	out.PromptTokens, out.CompletionTokens = len(p.PromptIDs), len(out.Pieces)
	return out, nil
}
