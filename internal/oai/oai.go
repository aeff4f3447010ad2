// Package oai holds the OpenAI-compatible wire types Agora's provider and
// gateway speak, and OpenAI-style errors.
package oai

import (
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	json "github.com/goccy/go-json"
)

// Message is a chat message. Content may be a string or an array of text parts.
type Message struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
}

// Content accepts a string or [{"type":"text","text":...}] parts.
type Content string

func (c *Content) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*c = Content(s)
		return nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &parts); err != nil {
		return errors.New("content must be a string or an array of text parts")
	}
	var sb strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return fmt.Errorf("content part type %q is not supported (text only)", p.Type)
		}
		sb.WriteString(p.Text)
	}
	*c = Content(sb.String())
	return nil
}

// Stop accepts a string or an array of strings.
type Stop []string

func (s *Stop) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = Stop{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("stop must be a string or an array of strings")
	}
	*s = many
	return nil
}

// Request is a chat or text completion request (the fields we support).
type Request struct {
	Model               string    `json:"model"`
	Messages            []Message `json:"messages,omitempty"`
	Prompt              *string   `json:"prompt,omitempty"`
	MaxTokens           *int      `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int      `json:"max_completion_tokens,omitempty"`
	Temperature         *float64  `json:"temperature,omitempty"`
	TopP                *float64  `json:"top_p,omitempty"`
	TopK                *int      `json:"top_k,omitempty"`
	MinP                *float64  `json:"min_p,omitempty"`
	Seed                *uint64   `json:"seed,omitempty"`
	Stop                Stop      `json:"stop,omitempty"`
	Stream              bool      `json:"stream,omitempty"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options,omitempty"`
	N                *int          `json:"n,omitempty"`
	FrequencyPenalty *float64      `json:"frequency_penalty,omitempty"`
	PresencePenalty  *float64      `json:"presence_penalty,omitempty"`
	Logprobs         LogprobsParam `json:"logprobs,omitempty"`
	TopLogprobs      *int          `json:"top_logprobs,omitempty"`
	User             string        `json:"user,omitempty"`

	// Accepted only in their neutral forms (see unsupported): a request
	// that needs them would otherwise be answered as if they were absent.
	Tools          json.RawMessage `json:"tools,omitempty"`
	Functions      json.RawMessage `json:"functions,omitempty"`
	ToolChoice     json.RawMessage `json:"tool_choice,omitempty"`
	FunctionCall   json.RawMessage `json:"function_call,omitempty"`
	ResponseFormat json.RawMessage `json:"response_format,omitempty"`
	LogitBias      json.RawMessage `json:"logit_bias,omitempty"`
}

// LogprobsParam is the logprobs parameter: a boolean on chat completions,
// the number of alternatives per token on text completions.
type LogprobsParam struct {
	On     bool // log-probs asked for
	Top    int  // alternatives, when given as a number
	IsBool bool // given as a boolean
}

func (l *LogprobsParam) UnmarshalJSON(b []byte) error {
	switch strings.TrimSpace(string(b)) {
	case "null":
		*l = LogprobsParam{}
		return nil
	case "true":
		*l = LogprobsParam{On: true, IsBool: true}
		return nil
	case "false":
		*l = LogprobsParam{IsBool: true}
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("logprobs must be a boolean or an integer")
	}
	*l = LogprobsParam{On: true, Top: n}
	return nil
}

// MaxTopLogprobs bounds the alternatives reported per token.
const MaxTopLogprobs = 20

// LogprobsWanted reports whether the request asks for log-probs and how
// many alternatives per token (chat: top_logprobs; text: the logprobs number).
func (r *Request) LogprobsWanted(chat bool) (bool, int) {
	if !r.Logprobs.On {
		return false, 0
	}
	if chat {
		if r.TopLogprobs != nil {
			return true, *r.TopLogprobs
		}
		return true, 0
	}
	return true, r.Logprobs.Top
}

// unsupported names a parameter the request sets to something Agora does
// not do (tools, structured output, logit bias), or returns "".
func (r *Request) unsupported() (param, why string) {
	isAny := func(raw json.RawMessage, neutral ...string) bool {
		s := strings.Join(strings.Fields(string(raw)), "")
		if len(raw) == 0 || s == "null" {
			return false
		}
		for _, n := range neutral {
			if s == n {
				return false
			}
		}
		return true
	}
	switch {
	case isAny(r.Tools, "[]"):
		return "tools", "tools (function calling) are not supported"
	case isAny(r.Functions, "[]"):
		return "functions", "functions (function calling) are not supported"
	case isAny(r.ToolChoice, `"none"`, `"auto"`):
		return "tool_choice", "tool_choice other than none or auto is not supported (no tools)"
	case isAny(r.FunctionCall, `"none"`, `"auto"`):
		return "function_call", "function_call other than none or auto is not supported (no functions)"
	case isAny(r.ResponseFormat, `{"type":"text"}`):
		return "response_format", "response_format other than text is not supported (no structured output)"
	case isAny(r.LogitBias, "{}"):
		return "logit_bias", "logit_bias is not supported"
	}
	return "", ""
}

// MaxOutput returns the requested output cap, or def.
func (r *Request) MaxOutput(def int) int {
	if r.MaxCompletionTokens != nil {
		return *r.MaxCompletionTokens
	}
	if r.MaxTokens != nil {
		return *r.MaxTokens
	}
	return def
}

// MaxBodyBytes bounds a request body.
const MaxBodyBytes = 1 << 20

// unmarshalRequest decodes a client's body with go-json (the fast path), and
// a body it refuses again with encoding/json: its errors say what is wrong
// in the body's own terms (go-json reports a truncated body as an invalid
// character '\x00', and a string where a number belongs as a number), and a
// body only go-json refused would still be served as the standard library
// reads it.
func unmarshalRequest(body []byte, req *Request) error {
	if json.Unmarshal(body, req) == nil {
		return nil
	}
	*req = Request{}
	return stdjson.Unmarshal(body, req)
}

// Decode reads and checks a request body. chat selects /v1/chat/completions
// (messages) versus /v1/completions (prompt).
func Decode(r *http.Request, chat bool) (*Request, []byte, *Error) {
	body, err := ReadLimited(r, MaxBodyBytes)
	if err != nil {
		return nil, nil, err
	}
	var req Request
	if e := unmarshalRequest(body, &req); e != nil {
		return nil, nil, Errorf(http.StatusBadRequest, "invalid_request_error", "", "malformed JSON body: %v", e)
	}
	if req.Model == "" {
		return nil, nil, Errorf(http.StatusBadRequest, "invalid_request_error", "model", "model is required")
	}
	if chat && len(req.Messages) == 0 {
		return nil, nil, Errorf(http.StatusBadRequest, "invalid_request_error", "messages", "messages must be a non-empty array")
	}
	if !chat && req.Prompt == nil {
		return nil, nil, Errorf(http.StatusBadRequest, "invalid_request_error", "prompt", "prompt is required")
	}
	for i, m := range req.Messages {
		switch m.Role {
		case "system", "user", "assistant", "developer":
		default:
			return nil, nil, Errorf(http.StatusBadRequest, "invalid_request_error", fmt.Sprintf("messages[%d].role", i), "unsupported role %q", m.Role)
		}
	}
	if req.N != nil && *req.N != 1 {
		return nil, nil, Errorf(http.StatusBadRequest, "invalid_request_error", "n", "only n=1 is supported")
	}
	if mt := req.MaxOutput(1); mt < 1 || mt > 1<<20 {
		return nil, nil, Errorf(http.StatusBadRequest, "invalid_request_error", "max_tokens", "max_tokens must be between 1 and 1048576, got %d", mt)
	}
	if t := req.Temperature; t != nil && (*t < 0 || *t > 2) {
		return nil, nil, Errorf(http.StatusBadRequest, "invalid_request_error", "temperature", "temperature must be between 0 and 2")
	}
	if p := req.TopP; p != nil && (*p <= 0 || *p > 1) {
		return nil, nil, Errorf(http.StatusBadRequest, "invalid_request_error", "top_p", "top_p must be in (0, 1]")
	}
	if tl := req.TopLogprobs; tl != nil && (*tl < 0 || *tl > MaxTopLogprobs) {
		return nil, nil, Errorf(http.StatusBadRequest, "invalid_request_error", "top_logprobs", "top_logprobs must be between 0 and %d", MaxTopLogprobs)
	}
	if chat {
		if req.Logprobs.On && !req.Logprobs.IsBool {
			return nil, nil, Errorf(http.StatusBadRequest, "invalid_request_error", "logprobs", "logprobs must be a boolean on chat completions (top_logprobs sets the alternatives per token)")
		}
		if req.TopLogprobs != nil && *req.TopLogprobs > 0 && !req.Logprobs.On {
			return nil, nil, Errorf(http.StatusBadRequest, "invalid_request_error", "top_logprobs", "top_logprobs needs logprobs: true")
		}
	} else if t := req.Logprobs.Top; t < 0 || t > MaxTopLogprobs {
		return nil, nil, Errorf(http.StatusBadRequest, "invalid_request_error", "logprobs", "logprobs must be between 0 and %d", MaxTopLogprobs)
	}
	if param, why := req.unsupported(); param != "" {
		return nil, nil, Errorf(http.StatusBadRequest, "invalid_request_error", param, "%s", why)
	}
	return &req, body, nil
}

// ReadLimited reads a request body of at most limit bytes; a longer one is
// a 413 in OpenAI's error format.
func ReadLimited(r *http.Request, limit int64) ([]byte, *Error) {
	if r.ContentLength > limit {
		return nil, Errorf(http.StatusRequestEntityTooLarge, "invalid_request_error", "", "request body of %d bytes exceeds %d", r.ContentLength, limit)
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, Errorf(http.StatusBadRequest, "invalid_request_error", "", "reading body: %v", err)
	}
	if int64(len(buf)) > limit {
		return nil, Errorf(http.StatusRequestEntityTooLarge, "invalid_request_error", "", "request body exceeds %d bytes", limit)
	}
	return buf, nil
}

// Usage is token accounting.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// Choice is one completion choice (chat: Message; text: Text).
type Choice struct {
	Index        int             `json:"index"`
	Message      *RespMessage    `json:"message,omitempty"`
	Delta        *RespMessage    `json:"delta,omitempty"`
	Text         *string         `json:"text,omitempty"`
	FinishReason *string         `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
}

// RespMessage is an assistant message or a streaming delta.
type RespMessage struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// Response is a completion or a streaming chunk.
type Response struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []Choice `json:"choices"`
	Usage   *Usage   `json:"usage,omitempty"`
}

// Model is an entry of GET /v1/models.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// Error is an OpenAI-style error with its HTTP status.
type Error struct {
	Status  int    `json:"-"`
	Message string `json:"message"`
	Type    string `json:"type"`
	Param   string `json:"param,omitempty"`
	Code    string `json:"code,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an Error.
func Errorf(status int, typ, param, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Param: param, Message: fmt.Sprintf(format, args...)}
}

// Write sends the error as {"error": {...}}.
func (e *Error) Write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(map[string]*Error{"error": e})
}

// ParseError reads an OpenAI-style error body.
func ParseError(status int, body []byte) *Error {
	var wrapper struct {
		Error *Error `json:"error"`
	}
	if json.Unmarshal(body, &wrapper) == nil && wrapper.Error != nil && wrapper.Error.Message != "" {
		wrapper.Error.Status = status
		return wrapper.Error
	}
	return Errorf(status, "api_error", "", "upstream answered %d: %.200s", status, body)
}

// Fallback answers what no route of mux took, OpenAI-style: 405 with an
// Allow header when the path takes other methods (a GET on a completions
// endpoint), else 404. Register it on "/".
func Fallback(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if m == r.Method {
				continue
			}
			if _, pattern := mux.Handler(&http.Request{Method: m, URL: r.URL, Host: r.Host}); pattern != "" && pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			Errorf(http.StatusMethodNotAllowed, "invalid_request_error", "", "%s %s is not served: use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")).Write(w)
			return
		}
		Errorf(http.StatusNotFound, "invalid_request_error", "", "unknown route %s %s", r.Method, r.URL.Path).Write(w)
	}
}
