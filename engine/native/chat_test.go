package native

import "testing"

func TestFormatChat(t *testing.T) {
	msgs := []Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi!"}, {Role: "assistant", Content: "Hello."}, {Role: "user", Content: "Why?"}}
	cases := map[ChatFormat]string{
		ChatML: "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n",
		Llama3: "<s><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhy?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
		Llama2: "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi! [/INST] Hello. </s><s>[INST] Why? [/INST]",
	}
	for f, want := range cases {
		got, err := FormatChat(f, msgs, "<s>", "</s>")
		if err != nil || got != want {
			t.Fatalf("%s:\n got %q\nwant %q (%v)", f, got, want, err)
		}
	}
	if _, err := FormatChat(Llama2, []Message{{Role: "wizard", Content: "x"}}, "", ""); err == nil {
		t.Fatal("unknown role accepted")
	}
	for tmpl, want := range map[string]ChatFormat{chatMLTemplate: ChatML, llama2Template: Llama2, "<|start_header_id|>": Llama3} {
		if got := DetectChatFormat(tmpl); got != want {
			t.Fatalf("detect %q = %s", tmpl[:20], got)
		}
	}
}
