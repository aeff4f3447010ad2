package oai

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func decode(t *testing.T, chat bool, body string) (*Request, *Error) {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req, _, e := Decode(r, chat)
	return req, e
}

// TestLogprobsParam: chat takes a boolean (alternatives in top_logprobs),
// text completions a number of alternatives; each form is refused where it
// does not belong, with the parameter named.
func TestLogprobsParam(t *testing.T) {
	chat := `{"model":"m","messages":[{"role":"user","content":"hi"}]`
	text := `{"model":"m","prompt":"hi"`
	for _, c := range []struct {
		chat      bool
		body      string
		on        bool
		top       int
		wantParam string
	}{
		{true, chat + `}`, false, 0, ""},
		{true, chat + `,"logprobs":true,"top_logprobs":3}`, true, 3, ""},
		{true, chat + `,"logprobs":true}`, true, 0, ""},
		{true, chat + `,"logprobs":false,"top_logprobs":0}`, false, 0, ""},
		{true, chat + `,"logprobs":null}`, false, 0, ""},
		{true, chat + `,"logprobs":3}`, false, 0, "logprobs"},
		{true, chat + `,"top_logprobs":2}`, false, 0, "top_logprobs"},
		{true, chat + `,"logprobs":true,"top_logprobs":21}`, false, 0, "top_logprobs"},
		{false, text + `,"logprobs":5}`, true, 5, ""},
		{false, text + `,"logprobs":0}`, true, 0, ""},
		{false, text + `,"logprobs":true}`, true, 0, ""},
		{false, text + `,"logprobs":21}`, false, 0, "logprobs"},
		{false, text + `,"logprobs":-1}`, false, 0, "logprobs"},
	} {
		req, e := decode(t, c.chat, c.body)
		if c.wantParam != "" {
			if e == nil || e.Param != c.wantParam || e.Status != http.StatusBadRequest {
				t.Errorf("%s: error %+v, want one on %s", c.body, e, c.wantParam)
			}
			continue
		}
		if e != nil {
			t.Errorf("%s: %v", c.body, e)
			continue
		}
		if on, top := req.LogprobsWanted(c.chat); on != c.on || top != c.top {
			t.Errorf("%s: logprobs %v/%d, want %v/%d", c.body, on, top, c.on, c.top)
		}
	}
	if _, e := decode(t, true, chat+`,"logprobs":"yes"}`); e == nil || !strings.Contains(e.Message, "logprobs must be a boolean or an integer") {
		t.Errorf("a string logprobs: %v", e)
	}
}

// TestUnsupportedParams: parameters Agora cannot honour are refused by
// name rather than ignored; their neutral forms (as SDKs send them) pass.
func TestUnsupportedParams(t *testing.T) {
	base := `{"model":"m","messages":[{"role":"user","content":"hi"}],`
	for _, ok := range []string{`"tools":[]`, `"tools":null`, `"tool_choice":"none"`, `"tool_choice":"auto"`, `"function_call":"none"`,
		`"response_format":{"type":"text"}`, `"response_format":{ "type" : "text" }`, `"logit_bias":{}`, `"functions":[]`, `"user":"u1"`} {
		if _, e := decode(t, true, base+ok+`}`); e != nil {
			t.Errorf("%s refused: %v", ok, e)
		}
	}
	for param, bad := range map[string]string{
		"tools":           `"tools":[{"type":"function","function":{"name":"f"}}]`,
		"functions":       `"functions":[{"name":"f"}]`,
		"tool_choice":     `"tool_choice":"required"`,
		"function_call":   `"function_call":{"name":"f"}`,
		"response_format": `"response_format":{"type":"json_object"}`,
		"logit_bias":      `"logit_bias":{"50256":-100}`,
	} {
		_, e := decode(t, true, base+bad+`}`)
		if e == nil || e.Param != param || !strings.Contains(e.Message, "not supported") {
			t.Errorf("%s: %+v", bad, e)
		}
	}
}

// FuzzDecode: any body gets a request or an OpenAI-style 4xx, never a
// panic; an accepted request names a model and keeps its body as sent (the
// gateway forwards those bytes).
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],"stop":["x"],"logprobs":true,"top_logprobs":2}`,
		`{"model":"m","prompt":"once","logprobs":3,"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[],"response_format":{"type":"text"},"logit_bias":{}}`,
		`{"model":"\xff","prompt":"\u0000"}`, `[]`, `{`, `null`, `{"model":1}`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, chat bool) {
		r, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		req, raw, e := Decode(r, chat)
		if e != nil {
			if e.Status < 400 || e.Status > 499 || e.Message == "" {
				t.Fatalf("error %+v", e)
			}
			return
		}
		if req.Model == "" || string(raw) != string(body) {
			t.Fatalf("accepted %q as %+v", body, req)
		}
	})
}

// TestMalformedBodyMessages: a body that does not decode is refused with a
// 400 that says what is wrong in the body's own terms (JSON field names,
// the type found), not go-json's wording of it.
func TestMalformedBodyMessages(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"model": "tiny", "messages": [`, "malformed JSON body: unexpected end of JSON input"},
		{``, "malformed JSON body: unexpected end of JSON input"},
		{`{"model":"m","max_tokens":"x"}`, "cannot unmarshal string into Go struct field Request.max_tokens of type int"},
		{`{"model":"m",}`, "invalid character '}' looking for beginning of object key string"},
		{`[1]`, "cannot unmarshal array into Go value of type oai.Request"},
		{`{"model":"m"} x`, "invalid character 'x' after top-level value"},
		{`{"model":"m","messages":[{"role":"user","content":5}]}`, "content must be a string or an array of text parts"},
	} {
		_, e := decode(t, true, c.body)
		if e == nil || e.Status != http.StatusBadRequest || !strings.Contains(e.Message, c.want) {
			t.Errorf("%q: got %+v, want 400 with %q", c.body, e, c.want)
		}
	}
	// a good body still decodes, on the fast path
	req, e := decode(t, true, `{"model":"m","max_tokens":7,"messages":[{"role":"user","content":"hi"}]}`)
	if e != nil || req.Model != "m" || req.MaxTokens == nil || *req.MaxTokens != 7 || string(req.Messages[0].Content) != "hi" {
		t.Fatalf("good body: %+v %+v", req, e)
	}
}

// TestFallback: a known path asked with the wrong method gets 405 and the
// methods it takes; an unknown path 404; both as OpenAI-style JSON.
func TestFallback(t *testing.T) {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }
	mux.HandleFunc("POST /v1/chat/completions", ok)
	mux.HandleFunc("GET /v1/receipts/{id}", ok)
	mux.HandleFunc("POST /v1/receipts/{id}/dispute", ok)
	mux.HandleFunc("/", Fallback(mux))
	for _, c := range []struct {
		method, path string
		status       int
		allow, msg   string
	}{
		{"GET", "/v1/chat/completions", 405, "POST", "GET /v1/chat/completions is not served: use POST"},
		{"DELETE", "/v1/receipts/abc", 405, "GET", "use GET"},
		{"GET", "/v1/receipts/abc/dispute", 405, "POST", "use POST"},
		{"POST", "/v1/embeddings", 404, "", "unknown route POST /v1/embeddings"},
		{"POST", "/v1/chat/completions", 200, "", "ok"},
	} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.status || rec.Header().Get("Allow") != c.allow || !strings.Contains(rec.Body.String(), c.msg) {
			t.Errorf("%s %s: %d Allow %q %s", c.method, c.path, rec.Code, rec.Header().Get("Allow"), rec.Body.String())
		}
		if c.status >= 400 {
			if e := ParseError(rec.Code, rec.Body.Bytes()); e.Message == "" || e.Type != "invalid_request_error" {
				t.Errorf("%s %s: not an OpenAI-style error: %s", c.method, c.path, rec.Body.String())
			}
		}
	}
}
