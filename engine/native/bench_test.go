package native

import (
	"os"
	"testing"

	"github.com/agoranet/agora/engine/gguf"
)

// BenchmarkDecode measures one-token decode steps on a generated model
// (AGORA_BENCH_MODEL overrides it with any GGUF file).
func BenchmarkDecode(b *testing.B) {
	path := os.Getenv("AGORA_BENCH_MODEL")
	if path == "" {
		path = tinyModel(b, gguf.F32, "llama")
	}
	m, err := Load(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	s := m.NewSession()
	if _, err := s.Forward([]int{1, 5, 9, 12}, false); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if s.Pos() >= m.Config.ContextLen-1 {
			s.Truncate(4)
		}
		if _, err := s.Forward([]int{(i * 7) % m.Config.Vocab}, false); err != nil {
			b.Fatal(err)
		}
	}
}
