package native

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ardanlabs/jinja"
)

// Chat templates of the model families, written from their published
// tokenizer_config.json formats (the no-tools paths of the Llama 3.2 and
// Qwen templates are kept whole, tool branches are abridged).
const (
	tmplLlama32 = `{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {{- raise_exception("tool calls are not part of this test") }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {{- message.content }}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
`

	tmplQwen25 = `{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
`

	tmplMistral = `{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {{- tool | tojson }}
            {%- endfor %}
            {{- "][/AVAILABLE_TOOLS]" }}
        {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- raise_exception("tool calls are not part of this test") }}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {{- '[TOOL_RESULTS] {"content": ' + message.content|string + "}[/TOOL_RESULTS]" }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
`

	tmplPhi3 = "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)

var chatConversation = []Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi!"}, {Role: "assistant", Content: "Hello."}, {Role: "user", Content: "Why?"}}

func TestChatTemplates(t *testing.T) {
	cases := []struct {
		name, tmpl, bos, eos string
		msgs                 []Message
		want                 string
	}{
		{"llama3.2", tmplLlama32, "<|begin_of_text|>", "<|eot_id|>", chatConversation,
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 03 Dec 2026\n\nBe brief.<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nWhy?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"qwen2.5", tmplQwen25, "", "<|im_end|>", chatConversation,
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n"},
		{"qwen2.5 default system", tmplQwen25, "", "<|im_end|>", chatConversation[1:2],
			"<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"},
		{"qwen3", qwen3Template, "", "<|im_end|>", chatConversation,
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n"},
		// An earlier answer's reasoning is dropped from the history.
		{"qwen3 think", qwen3Template, "", "<|im_end|>", []Message{{Role: "user", Content: "Hi!"}, {Role: "assistant", Content: "<think>\nGreet back.\n</think>\n\nHello."}, {Role: "user", Content: "Why?"}},
			"<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n"},
		{"mistral", tmplMistral, "<s>", "</s>", chatConversation,
			"<s>[INST] Hi![/INST] Hello.</s>[INST] Be brief.\n\nWhy?[/INST]"},
		{"gemma3", gemma3Template, "<bos>", "<eos>", chatConversation,
			"<bos><start_of_turn>user\nBe brief.\n\nHi!<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n<start_of_turn>user\nWhy?<end_of_turn>\n<start_of_turn>model\n"},
		{"phi3", tmplPhi3, "<s>", "<|endoftext|>", chatConversation,
			"<|system|>\nBe brief.<|end|>\n<|user|>\nHi!<|end|>\n<|assistant|>\nHello.<|end|>\n<|user|>\nWhy?<|end|>\n<|assistant|>\n"},
		// The official Llama-2 template written into generated models
		// renders what the fixed Llama-2 layout did.
		{"llama2", llama2Template, "<s>", "</s>", chatConversation,
			"<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi! [/INST] Hello. </s><s>[INST] Why? [/INST]"},
		{"chatml", chatMLTemplate, "", "", chatConversation,
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewChatTemplate(tc.tmpl, tc.bos, tc.eos)
			if err != nil {
				t.Fatal(err)
			}
			c.Now = func() time.Time { return time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC) }
			got, err := c.Format(tc.msgs)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestChatTemplateErrors(t *testing.T) {
	// Templates that do not parse are refused when loaded.
	for _, bad := range []string{"{% for m in messages %}", "{{ 'x' ", "{% foo %}", "{% endfor %}"} {
		if _, err := NewChatTemplate(bad, "", ""); err == nil || !strings.Contains(err.Error(), "chat template") {
			t.Errorf("template %q accepted (err %v)", bad, err)
		}
	}
	// A template's own exception is the request's error.
	c, err := NewChatTemplate(gemma3Template, "<bos>", "<eos>")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Format([]Message{{Role: "user", Content: "a"}, {Role: "user", Content: "b"}}); err == nil || !strings.Contains(err.Error(), "roles must alternate") {
		t.Fatalf("non-alternating roles: %v", err)
	}
	// Evaluation errors (not syntax) surface at format time.
	c, err = NewChatTemplate("{{ nosuch() }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err = c.Format([]Message{{Role: "user", Content: "a"}}); err == nil || !strings.Contains(err.Error(), "chat template") {
		t.Fatalf("calling an undefined function: %v", err)
	}
	// No template: the fallback layout.
	c, err = NewChatTemplate("", "<s>", "</s>")
	if err != nil || c.HasTemplate() {
		t.Fatalf("empty template: %v", err)
	}
	if got, _ := c.Format(chatConversation[1:2]); got != "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n" {
		t.Fatalf("fallback rendered %q", got)
	}
}

func TestStrftime(t *testing.T) {
	tm := time.Date(2026, 3, 7, 14, 5, 9, 0, time.UTC)
	for f, want := range map[string]string{"%d %b %Y": "07 Mar 2026", "%Y-%m-%d %H:%M:%S": "2026-03-07 14:05:09", "%A %B %y %%": "Saturday March 26 %", "%q": "%q"} {
		if got := strftime(tm, f); got != want {
			t.Errorf("strftime(%q) = %q, want %q", f, got, want)
		}
	}
}

// FuzzChatTemplate renders random conversations through every template:
// each gives a string or an error, never a panic.
func FuzzChatTemplate(f *testing.F) {
	f.Add("system", "Be brief.", "user", "Hi!", uint8(3))
	f.Add("user", "<think>x</think>", "assistant", "{{ x }}", uint8(1))
	f.Add("tool", "", "wizard", "\x00\xff", uint8(7))
	var tmpls []*ChatTemplate
	for _, src := range []string{tmplLlama32, tmplQwen25, qwen3Template, tmplMistral, gemma3Template, tmplPhi3, llama2Template, chatMLTemplate, ""} {
		c, err := NewChatTemplate(src, "<s>", "</s>")
		if err != nil {
			f.Fatal(err)
		}
		c.Now = func() time.Time { return time.Unix(0, 0).UTC() }
		tmpls = append(tmpls, c)
	}
	f.Fuzz(func(t *testing.T, r1, c1, r2, c2 string, n uint8) {
		var msgs []Message
		for i := 0; i < int(n%8); i++ {
			if i%2 == 0 {
				msgs = append(msgs, Message{Role: r1, Content: c1})
			} else {
				msgs = append(msgs, Message{Role: r2, Content: c2})
			}
		}
		for _, c := range tmpls {
			c.Format(msgs)
		}
	})
}

// FuzzChatTemplateSource compiles and renders random template text: a bad
// template is an error at load or at format time, never a panic.
func FuzzChatTemplateSource(f *testing.F) {
	for _, s := range []string{qwen3Template, gemma3Template, tmplPhi3, "{% for m in messages %}{{ m.role }}", "{{ raise_exception('x') }}", "{% set ns = namespace(a=1) %}{{ ns.a / 0 }}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := NewChatTemplate(src, "<s>", "</s>")
		if err != nil {
			return
		}
		c.Now = func() time.Time { return time.Unix(0, 0).UTC() }
		c.Format(chatConversation)
	})
}

// TestChatTokensMatchLlamaCpp: the prompt a generated model's own template
// renders for a system+user+assistant+user chat tokenizes to the ids
// llama.cpp gives the same text with special tokens parsed (tok.mjs MODEL
// @TEXT special): turn markers become single tokens, and SentencePiece
// text after each special token gets llama.cpp's space prefix. The
// template's BOS is not doubled.
func TestChatTokensMatchLlamaCpp(t *testing.T) {
	cases := []struct {
		o    GenOptions
		want []int
	}{
		{GenOptions{Arch: "gemma3", Tokenizer: "llama"}, []int{1, 3, 261, 266, 280, 300, 15, 71, 264, 339, 271, 267, 264, 275, 288, 15, 15, 77, 267, 38, 4, 261, 15, 3, 341, 272, 434, 15, 77, 447, 288, 4, 261, 15, 3, 261, 266, 280, 300, 15, 92, 263, 285, 291, 4, 261, 15, 3, 341, 272, 434, 15}},
		{GenOptions{Arch: "qwen3", Tokenizer: "gpt2", Pre: "qwen2"}, []int{1, 118, 124, 118, 119, 104, 112, 13, 69, 104, 299, 117, 108, 104, 105, 49, 2, 13, 1, 120, 118, 261, 13, 75, 108, 36, 2, 13, 1, 363, 118, 322, 119, 378, 13, 75, 104, 326, 114, 49, 2, 13, 1, 120, 118, 261, 13, 90, 107, 124, 66, 2, 13, 1, 363, 118, 322, 119, 378, 13}},
		{GenOptions{Arch: "llama", Tokenizer: "llama"}, []int{1, 259, 94, 76, 81, 86, 87, 96, 259, 63, 63, 86, 92, 86, 65, 65, 13, 69, 262, 337, 269, 265, 262, 273, 286, 13, 63, 63, 50, 86, 92, 86, 65, 65, 13, 13, 75, 265, 36, 259, 94, 50, 76, 81, 86, 87, 96, 259, 75, 445, 286, 259, 2, 1, 259, 94, 76, 81, 86, 87, 96, 259, 90, 261, 283, 289, 259, 94, 50, 76, 81, 86, 87, 96}},
		{GenOptions{Arch: "llama", Tokenizer: "gpt2"}, []int{1, 118, 124, 118, 119, 104, 112, 13, 69, 104, 299, 117, 108, 104, 105, 49, 2, 13, 1, 120, 118, 261, 13, 75, 108, 36, 2, 13, 1, 363, 118, 322, 119, 378, 13, 75, 104, 326, 114, 49, 2, 13, 1, 120, 118, 261, 13, 90, 107, 124, 66, 2, 13, 1, 363, 118, 322, 119, 378, 13}},
	}
	for _, tc := range cases {
		o := tc.o
		o.Dim, o.Layers, o.Heads, o.Vocab, o.Seed, o.Context = 64, 1, 4, 600, 7, 256
		path := filepath.Join(t.TempDir(), "m.gguf")
		if err := WriteRandomModel(path, o); err != nil {
			t.Fatal(err)
		}
		m, tok := load(t, path, 1)
		c, err := ChatTemplateOf(m.File, tok)
		if err != nil || !c.HasTemplate() {
			t.Fatalf("%s/%s: template: %v", o.Arch, o.Tokenizer, err)
		}
		got, err := c.Prompt(tok, chatConversation)
		if err != nil {
			t.Fatal(err)
		}
		if !equalInts(got, tc.want) {
			t.Errorf("%s/%s:\n got %v\nwant %v", o.Arch, o.Tokenizer, got, tc.want)
		}
	}
}

// TestChatTemplateRunaway: templates that would recurse or nest without
// bound are errors, not a stack overflow that kills the process.
func TestChatTemplateRunaway(t *testing.T) {
	c, err := NewChatTemplate("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(1) }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Format(chatConversation); err == nil || !strings.Contains(err.Error(), "macro calls") {
		t.Fatalf("runaway recursion: %v", err)
	}
	// Mutual recursion, with whitespace control on the tags.
	c, err = NewChatTemplate("{%- macro a(n) -%}{{ b(n) }}{%- endmacro -%}{%- macro b(n) -%}{{ a(n) }}{%- endmacro -%}{{ a(1) }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Format(chatConversation); err == nil || !strings.Contains(err.Error(), "macro calls") {
		t.Fatalf("mutual recursion: %v", err)
	}
	// A default holding '%' and ')' does not hide a macro from the guard.
	c, err = NewChatTemplate("{% macro f(a='%)', n=1) %}{{ f(a, n) }}{% endmacro %}{{ f() }}", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Format(nil); err == nil || !strings.Contains(err.Error(), "macro calls") {
		t.Fatalf("recursion behind a '%%)' default: %v", err)
	}
	// Bounded recursion and macros with whitespace control render as they
	// do without the guard (trim_blocks drops the newline after a tag).
	src := "{%- macro count(n) -%}\n  {%- if n > 0 -%}{{ n }},{{ count(n - 1) }}{%- endif -%}\n{%- endmacro -%}\n{{ count(3) }}|{% macro m() %}\n x {% endmacro %}[{{ m() }}]\n  {% macro k(a='%') %}\n{{ a }}\n{% endmacro %}{{ k() }}"
	raw, err := jinja.Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	want, err := raw.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err = NewChatTemplate(src, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Format(nil); err != nil || got != want || !strings.HasPrefix(got, "3,2,1,|[ x ]") {
		t.Fatalf("guarded template rendered %q (%v), unguarded %q", got, err, want)
	}
	if _, err := NewChatTemplate(strings.Repeat("{{ (", 40000), "", ""); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("oversized template: %v", err)
	}
	deep := "{{ " + strings.Repeat("(", 30000) + "1" + strings.Repeat(")", 30000) + " }}"
	if c, err := NewChatTemplate(deep, "", ""); err == nil {
		c.Format(nil) // an answer or an error; the process survives
	}
}
