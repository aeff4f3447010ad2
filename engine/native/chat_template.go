package native

import (
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ardanlabs/jinja"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/tokenizer"
)

// ChatTemplate renders chats the way a model was trained to read them: by
// executing the Jinja template in its GGUF (tokenizer.chat_template), as
// llama.cpp and transformers do. A file without a template falls back to a
// fixed layout (ChatML, Llama-2 or Llama-3). Safe for concurrent use.
type ChatTemplate struct {
	tmpl     *jinja.Template // nil: the file has no template
	fallback ChatFormat
	bos, eos string
	// Now is the clock behind the templates' strftime_now (Llama 3.x
	// writes today's date into its system header); nil means time.Now.
	Now func() time.Time
}

// NewChatTemplate compiles a template's source; bos and eos are the texts of
// the model's BOS and EOS tokens. An empty source selects the fallback
// layout. A template that does not parse is refused here, naming the cause.
func NewChatTemplate(source, bos, eos string) (*ChatTemplate, error) {
	c := &ChatTemplate{fallback: DetectChatFormat(source), bos: bos, eos: eos}
	if strings.TrimSpace(source) == "" {
		return c, nil
	}
	if len(source) > maxTemplateBytes {
		return nil, fmt.Errorf("chat template: %d bytes, more than the %d accepted", len(source), maxTemplateBytes)
	}
	t, err := compileTemplate(guardMacros(source))
	if err != nil {
		return nil, fmt.Errorf("chat template: %w", err)
	}
	c.tmpl = t
	return c, nil
}

// maxTemplateBytes bounds a template's source (published ones are under
// 32 KB), and with it how deep the parser can recurse.
const maxTemplateBytes = 128 << 10

// maxMacroCalls bounds the macro calls of one rendering. A recursive macro
// that never stops would otherwise overflow the stack, which Go cannot
// recover from; real templates call a handful.
const maxMacroCalls = 4096

// macroOpen matches a macro definition's opening tag.
var macroOpen = regexp.MustCompile(`(?s)\{%-?\s*macro\s+[A-Za-z_][A-Za-z0-9_]*\s*\(.*?\)\s*-?%\}`)

// guardMacros makes every macro body begin by counting the call against
// the render's budget. The added tag writes nothing, and as a block tag it
// takes the place of the opening tag for whitespace control, so the
// rendering is unchanged.
func guardMacros(source string) string {
	return macroOpen.ReplaceAllString(source, "$0{% if __agora_macro_call() %}{% endif %}")
}

// compileTemplate runs the parser under recover: a malformed template is
// an error, never a crash of the process serving the model.
func compileTemplate(source string) (t *jinja.Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("template parser failed: %v", r)
		}
	}()
	return jinja.Compile(source)
}

// ChatTemplateOf reads the chat template of tok's model file.
func ChatTemplateOf(f *gguf.File, tok *tokenizer.Tokenizer) (*ChatTemplate, error) {
	src := ""
	if _, ok := f.Get("tokenizer.chat_template"); ok {
		s, err := f.String("tokenizer.chat_template")
		if err != nil {
			return nil, fmt.Errorf("chat template: %w", err)
		}
		src = s
	}
	bos, eos := "", ""
	if tok.BOS >= 0 && tok.BOS < len(tok.Tokens) {
		bos = tok.Tokens[tok.BOS]
	}
	if tok.EOS >= 0 && tok.EOS < len(tok.Tokens) {
		eos = tok.Tokens[tok.EOS]
	}
	return NewChatTemplate(src, bos, eos)
}

// HasTemplate reports whether the model's own template is executed (false:
// the fallback layout is used).
func (c *ChatTemplate) HasTemplate() bool { return c.tmpl != nil }

// Format renders msgs as a prompt that ends where the assistant's answer
// begins (add_generation_prompt is true). Errors raised by the template
// (raise_exception, e.g. roles that do not alternate) are returned as is.
func (c *ChatTemplate) Format(msgs []Message) (string, error) {
	if c.tmpl == nil {
		return FormatChat(c.fallback, msgs, c.bos, c.eos)
	}
	list := make([]any, len(msgs))
	for i, m := range msgs {
		list[i] = map[string]any{"role": m.Role, "content": m.Content}
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	var calls atomic.Int64
	vals := map[string]jinja.Value{
		"__agora_macro_call": jinja.NewCallable("__agora_macro_call", func([]jinja.Value, map[string]jinja.Value) (jinja.Value, error) {
			if calls.Add(1) > maxMacroCalls {
				return jinja.Undefined(), fmt.Errorf("more than %d macro calls (runaway recursion?)", maxMacroCalls)
			}
			return jinja.NewBool(false), nil
		}),
		"messages":              jinja.FromGoValue(list),
		"add_generation_prompt": jinja.NewBool(true),
		"bos_token":             jinja.NewString(c.bos),
		"eos_token":             jinja.NewString(c.eos),
		"tools":                 jinja.None(),
		"strftime_now": jinja.NewCallable("strftime_now", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
			if len(args) != 1 || !args[0].IsString() {
				return jinja.Undefined(), fmt.Errorf("strftime_now: want one format string")
			}
			return jinja.NewString(strftime(now(), args[0].AsString())), nil
		}),
	}
	return c.render(vals)
}

func (c *ChatTemplate) render(vals map[string]jinja.Value) (out string, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("chat template failed: %v", r)
		}
	}()
	out, err = c.tmpl.RenderValues(vals)
	if err != nil {
		return "", fmt.Errorf("chat template: %w", err)
	}
	return out, nil
}

// Prompt renders msgs and tokenizes the text with special tokens parsed.
// The model's BOS is added when its tokenizer asks for one, unless the
// template already wrote it (llama.cpp's rule, so a prompt never starts
// with two).
func (c *ChatTemplate) Prompt(tok *tokenizer.Tokenizer, msgs []Message) ([]int, error) {
	text, err := c.Format(msgs)
	if err != nil {
		return nil, err
	}
	if c.tmpl == nil {
		// The Llama-2 and Llama-3 layouts carry BOS in the text; ChatML
		// gets it if the model wants one.
		return tok.Encode(text, c.fallback == ChatML && tok.AddBOS, true), nil
	}
	ids := tok.Encode(text, false, true)
	if tok.AddBOS && tok.BOS >= 0 && (len(ids) == 0 || ids[0] != tok.BOS) {
		ids = append([]int{tok.BOS}, ids...)
	}
	return ids, nil
}

// strftime formats t with the C/Python directives chat templates use.
func strftime(t time.Time, format string) string {
	var sb strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			sb.WriteByte(format[i])
			continue
		}
		i++
		switch format[i] {
		case 'Y':
			fmt.Fprintf(&sb, "%04d", t.Year())
		case 'y':
			fmt.Fprintf(&sb, "%02d", t.Year()%100)
		case 'm':
			fmt.Fprintf(&sb, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&sb, "%02d", t.Day())
		case 'H':
			fmt.Fprintf(&sb, "%02d", t.Hour())
		case 'M':
			fmt.Fprintf(&sb, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&sb, "%02d", t.Second())
		case 'B':
			sb.WriteString(t.Month().String())
		case 'b':
			sb.WriteString(t.Month().String()[:3])
		case 'A':
			sb.WriteString(t.Weekday().String())
		case 'a':
			sb.WriteString(t.Weekday().String()[:3])
		case 'j':
			fmt.Fprintf(&sb, "%03d", t.YearDay())
		case '%':
			sb.WriteByte('%')
		default:
			sb.WriteByte('%')
			sb.WriteByte(format[i])
		}
	}
	return sb.String()
}
