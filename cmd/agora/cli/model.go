package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
)

func modelCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "model", Short: "Create and inspect GGUF models; register trained ones on chain and check their provenance"}
	var o native.GenOptions
	var typ string
	newCmd := &cobra.Command{
		Use:   "new -o FILE",
		Short: "Write a GGUF model with random weights and a full tokenizer (for tests and demos)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, _ := cmd.Flags().GetString("output-file")
			if out == "" {
				return fmt.Errorf("-o FILE is required")
			}
			if base, ok := native.Mixes[strings.ToLower(typ)]; ok {
				o.Type, o.Mix = base, strings.ToLower(typ)
			} else {
				t, err := parseTensorType(typ)
				if err != nil {
					return err
				}
				o.Type = t
			}
			start := time.Now()
			fmt.Fprintf(g.errOut, "writing %s (%s, dim %d, %d layers, vocab %d) ...\n", out, typ, o.Dim, o.Layers, o.Vocab)
			if err := native.WriteRandomModel(out, o); err != nil {
				return err
			}
			st, _ := os.Stat(out)
			fmt.Fprintf(g.out, "wrote %s: %.1f MB in %s\n", out, float64(st.Size())/1e6, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	f := newCmd.Flags()
	f.StringP("output-file", "o", "", "output GGUF file")
	f.StringVar(&o.Arch, "arch", "llama", "architecture: llama, mistral, qwen2, qwen3 or gemma3")
	f.IntVar(&o.HeadDim, "head-dim", 0, "width of an attention head (default dim/heads)")
	f.IntVar(&o.SlidingWindow, "sliding-window", 0, "gemma3: local attention window (default 16)")
	f.Float32Var(&o.RopeLinear, "rope-linear", 0, "gemma3: linear RoPE scaling factor of the global layers")
	f.IntVar(&o.Dim, "dim", 256, "embedding size")
	f.IntVar(&o.Layers, "layers", 4, "transformer blocks")
	f.IntVar(&o.Heads, "heads", 8, "attention heads")
	f.IntVar(&o.KVHeads, "kv-heads", 0, "key/value heads (default: heads)")
	f.IntVar(&o.FFN, "ffn", 0, "feed-forward size (default 8/3 dim)")
	f.IntVar(&o.Vocab, "vocab", 4096, "vocabulary size")
	f.IntVar(&o.Context, "context", 2048, "context length")
	f.Uint64Var(&o.Seed, "seed", 1, "weights seed")
	f.StringVar(&typ, "type", "f32", "weight type: f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_k, q3_k, q4_k, q5_k, q6_k, or a mix as llama.cpp writes it: q4_k_m, q5_k_m")
	f.StringVar(&o.Tokenizer, "tokenizer", "llama", "tokenizer: llama (SentencePiece) or gpt2 (byte-level BPE)")
	f.StringVar(&o.Pre, "pre", "", "BPE pre-tokenizer for --tokenizer gpt2: default, llama-bpe (Llama-3) or qwen2")
	f.BoolVar(&o.Tied, "tied", false, "tie the output projection to the token embeddings (no output.weight)")

	var output string
	info := &cobra.Command{
		Use: "info FILE", Short: "Show a GGUF file's metadata and tensors", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			gf, err := gguf.Open(args[0])
			if err != nil {
				return err
			}
			defer gf.Close()
			type tensor struct {
				Name string   `json:"name"`
				Type string   `json:"type"`
				Dims []uint64 `json:"dims"`
			}
			meta := map[string]any{}
			for _, kv := range gf.KVs {
				meta[kv.Key] = summarize(kv.Value)
			}
			var ts []tensor
			var params uint64
			for _, t := range gf.Tensors {
				ts = append(ts, tensor{t.Name, t.Type.String(), t.Dims})
				params += t.Elements()
			}
			out := map[string]any{"version": gf.Version, "parameters": params, "metadata": meta, "tensors": ts}
			return printer{w: g.out, json: output == "json"}.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "GGUF v%d, %d tensors, %d parameters\n", gf.Version, len(ts), params)
				keys := make([]string, 0, len(meta))
				for k := range meta {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					fmt.Fprintf(w, "  %-45s %v\n", k, meta[k])
				}
				for _, t := range ts {
					fmt.Fprintf(w, "  tensor %-32s %-5s %v\n", t.Name, t.Type, t.Dims)
				}
			})
		},
	}
	info.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.AddCommand(newCmd, info, simulateCmd(g))
	cmd.AddCommand(modelRegistryCmds(g)...)
	return cmd
}

func summarize(v gguf.Value) any {
	switch x := v.V.(type) {
	case []string:
		if len(x) > 8 {
			return fmt.Sprintf("[%d strings: %q ...]", len(x), x[:8])
		}
		return x
	case []float32:
		return fmt.Sprintf("[%d float32]", len(x))
	case []int32:
		return fmt.Sprintf("[%d int32]", len(x))
	case string:
		if len(x) > 120 {
			return x[:120] + "..."
		}
	}
	return v.V
}

// writableTypes are the weight types `agora model new` can quantize to.
var writableTypes = native.WeightTypes()

func parseTensorType(s string) (gguf.TensorType, error) {
	names := make([]string, len(writableTypes))
	for i, t := range writableTypes {
		if strings.EqualFold(s, t.String()) {
			return t, nil
		}
		names[i] = strings.ToLower(t.String())
	}
	return 0, fmt.Errorf("unknown weight type %q (%s)", s, strings.Join(names, ", "))
}

func generateCmd(g *globals) *cobra.Command {
	var (
		modelPath, prompt string
		chat, asJSON      bool
		threads, ctxLen   int
		p                 native.SampleParams
	)
	cmd := &cobra.Command{
		Use:   "generate --model FILE --prompt TEXT",
		Short: "Generate text with the native engine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if modelPath == "" {
				return fmt.Errorf("--model is required")
			}
			t0 := time.Now()
			m, err := native.Load(modelPath, native.Options{Threads: threads, ContextLen: ctxLen})
			if err != nil {
				return err
			}
			defer m.Close()
			tok, err := tokenizer.FromGGUF(m.File)
			if err != nil {
				return err
			}
			loadTime := time.Since(t0)
			var ids []int
			if chat {
				tmpl, err := native.ChatTemplateOf(m.File, tok)
				if err != nil {
					return err
				}
				if ids, err = tmpl.Prompt(tok, []native.Message{{Role: "user", Content: prompt}}); err != nil {
					return err
				}
			} else {
				ids = tok.Encode(prompt, tok.AddBOS, false)
			}
			var onTok func(native.TokenResult) bool
			if !asJSON {
				fmt.Fprint(g.out, prompt)
				onTok = func(tr native.TokenResult) bool { fmt.Fprint(g.out, tr.Text); return true }
			}
			res, err := m.Generate(tok, ids, p, onTok)
			if err != nil {
				return err
			}
			if asJSON {
				out := struct {
					*native.Result
					PromptTokensPerSecond float64 `json:"prompt_tokens_per_second"`
					DecodeTokensPerSecond float64 `json:"decode_tokens_per_second"`
					LoadSeconds           float64 `json:"load_seconds"`
				}{res, res.PromptTokensPerSecond(), res.DecodeTokensPerSecond(), loadTime.Seconds()}
				enc := json.NewEncoder(g.out)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			fmt.Fprintf(g.errOut, "\n\n[%d prompt tokens at %.1f tok/s, %d generated at %.1f tok/s, finish: %s]\n",
				len(res.PromptTokens), res.PromptTokensPerSecond(), len(res.Tokens), res.DecodeTokensPerSecond(), res.FinishReason)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelPath, "model", "", "GGUF model file")
	f.StringVar(&prompt, "prompt", "", "prompt text")
	f.BoolVar(&chat, "chat", false, "format the prompt as a user chat message with the model's chat template")
	f.BoolVar(&asJSON, "json", false, "print prompt/generated token ids, log-probs and speeds as JSON")
	f.IntVar(&threads, "threads", 0, "matmul threads (default GOMAXPROCS); results do not depend on it")
	f.IntVar(&ctxLen, "context", 0, "context length cap (default: the model's, at most 4096)")
	f.Float64Var(&p.Temperature, "temperature", 0, "sampling temperature (0: greedy)")
	f.IntVar(&p.TopK, "top-k", 0, "top-k (0: off)")
	f.Float64Var(&p.TopP, "top-p", 1, "top-p (1: off)")
	f.Float64Var(&p.MinP, "min-p", 0, "min-p (0: off)")
	f.Float64Var(&p.RepeatPenalty, "repeat-penalty", 1, "repetition penalty (1: off)")
	f.Float64Var(&p.FrequencyPenalty, "frequency-penalty", 0, "frequency penalty")
	f.Float64Var(&p.PresencePenalty, "presence-penalty", 0, "presence penalty")
	f.Uint64Var(&p.Seed, "seed", 0, "sampling seed")
	f.IntVar(&p.MaxTokens, "max-tokens", 64, "tokens to generate")
	f.StringSliceVar(&p.Stop, "stop", nil, "stop sequence (repeatable)")
	f.IntVar(&p.TopLogprobs, "top-logprobs", 0, "alternatives per token in --json (max 20)")
	return cmd
}
