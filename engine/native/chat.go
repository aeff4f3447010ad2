package native

import (
	"fmt"
	"strings"
)

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// ChatFormat is a prompt layout for chat requests.
type ChatFormat string

const (
	ChatML ChatFormat = "chatml" // <|im_start|>role\n...<|im_end|>
	Llama2 ChatFormat = "llama2" // <s>[INST] <<SYS>>...<</SYS>> user [/INST] answer </s>
	Llama3 ChatFormat = "llama3" // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
)

// DetectChatFormat picks the fallback layout for a model without a chat
// template (ChatTemplate executes the template when there is one).
func DetectChatFormat(template string) ChatFormat {
	switch {
	case strings.Contains(template, "<|start_header_id|>"):
		return Llama3
	case strings.Contains(template, "[INST]"):
		return Llama2
	}
	return ChatML
}

// FormatChat renders messages as a prompt that ends where the assistant's
// answer begins. The result is meant for Encode with parseSpecial.
func FormatChat(f ChatFormat, msgs []Message, bos, eos string) (string, error) {
	var sb strings.Builder
	switch f {
	case ChatML:
		for _, m := range msgs {
			fmt.Fprintf(&sb, "<|im_start|>%s\n%s<|im_end|>\n", m.Role, m.Content)
		}
		sb.WriteString("<|im_start|>assistant\n")
	case Llama3:
		sb.WriteString(bos)
		for _, m := range msgs {
			fmt.Fprintf(&sb, "<|start_header_id|>%s<|end_header_id|>\n\n%s<|eot_id|>", m.Role, strings.TrimSpace(m.Content))
		}
		sb.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
	case Llama2:
		system := ""
		for i, m := range msgs {
			switch m.Role {
			case "system":
				system = "<<SYS>>\n" + m.Content + "\n<</SYS>>\n\n"
			case "user":
				fmt.Fprintf(&sb, "%s[INST] %s%s [/INST]", bos, system, strings.TrimSpace(m.Content))
				system = ""
			case "assistant":
				fmt.Fprintf(&sb, " %s %s", strings.TrimSpace(m.Content), eos)
			default:
				return "", fmt.Errorf("message %d: unknown role %q", i, m.Role)
			}
		}
	default:
		return "", fmt.Errorf("unknown chat format %q", f)
	}
	return sb.String(), nil
}
