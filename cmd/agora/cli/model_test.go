package cli

import (
	"strings"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

func TestParseTensorType(t *testing.T) {
	for in, want := range map[string]gguf.TensorType{"f32": gguf.F32, "F16": gguf.F16, "bf16": gguf.BF16, "Q8_0": gguf.Q8_0, "q4_0": gguf.Q4_0, "q4_k": gguf.Q4_K, "Q6_K": gguf.Q6_K, "q5_k": gguf.Q5_K, "q4_1": gguf.Q4_1, "Q5_0": gguf.Q5_0, "q5_1": gguf.Q5_1, "q2_k": gguf.Q2_K, "q3_K": gguf.Q3_K} {
		got, err := parseTensorType(in)
		if err != nil || got != want {
			t.Errorf("parseTensorType(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "q8_k", "iq4_nl", "f64", "q8"} {
		_, err := parseTensorType(in)
		if err == nil || !strings.Contains(err.Error(), "unknown weight type") || !strings.Contains(err.Error(), "q6_k") {
			t.Errorf("parseTensorType(%q) error = %v; want unknown weight type listing the choices", in, err)
		}
	}
}
