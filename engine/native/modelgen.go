package native

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/agoranet/agora/engine/gguf"
	"github.com/agoranet/agora/engine/tokenizer"
)

// GenOptions describe a random model for tests and demos.
type GenOptions struct {
	Arch      string // llama (default), mistral, qwen2, qwen3 or gemma3
	Dim       int
	Layers    int
	Heads     int
	KVHeads   int
	FFN       int // default 8/3 * Dim rounded up to 32
	Vocab     int
	Context   int
	Seed      uint64
	Type      gguf.TensorType // weight type: any of supportedTypes
	Tokenizer string          // llama (SentencePiece, default) or gpt2 (byte-level BPE)
	Name      string
	// Tied: no output.weight; the output projection reuses token_embd.
	Tied bool
	// Pre is the BPE pre-tokenizer written to tokenizer.ggml.pre (gpt2 tokenizer only).
	Pre string
	// HeadDim is the width of a head (0: Dim/Heads). Qwen3 and Gemma 3
	// files always state it (attention.key_length).
	HeadDim int
	// SlidingWindow is Gemma 3's local attention window (0: 16, so short
	// tests cross it).
	SlidingWindow int
	// Softcap, if set, is written as Gemma 3's final_logit_softcapping.
	Softcap float32
	// RopeLinear, if set, is a linear RoPE scaling factor for Gemma 3's
	// global layers (rope.scaling.type linear), as its 4B+ models have.
	RopeLinear float32
	// Mix, if set (a key of Mixes), varies the type per tensor as llama.cpp's
	// _M files do; Type is then the base type.
	Mix string
	// Weights, if set, gives every tensor's values by name (row-major,
	// rows x cols) instead of random ones: how the trainer writes a model
	// with the same metadata, tokenizer and tensor layout.
	Weights map[string][]float32
}

// corpus seeds the generated vocabulary with English-like merges.
const corpus = `the quick brown fox jumps over the lazy dog. a network of computers shares work and
pays for it. every provider serves models and every client pays per token. validators check the work
by sampling and the chain keeps everyone honest. hello world, this is agora: a decentralized network for
ai compute. people contribute their machines, and the answers they give can be verified. what is the
capital of france? the capital of france is paris. tell me a story about a small robot that learned to
sing. once upon a time there was a small robot. it lived in a quiet town and it wanted to sing.
numbers like 1, 2, 3, 10, 42 and 2026 appear in text too. questions, answers, and conversations.`

// WriteRandomModel writes a valid GGUF model with random weights and a full
// tokenizer, so tests and a local network need no download.
func WriteRandomModel(path string, o GenOptions) error {
	w, err := randomModel(o)
	if err != nil {
		return err
	}
	return w.WriteFile(path)
}

// WriteRandomModelTo is WriteRandomModel onto a writer (a compute job's
// output file, a buffer): the same bytes.
func WriteRandomModelTo(out io.Writer, o GenOptions) error {
	w, err := randomModel(o)
	if err != nil {
		return err
	}
	return w.Write(out)
}

// randomModel builds the GGUF WriteRandomModel writes.
func randomModel(o GenOptions) (*gguf.Writer, error) {
	if o.Arch == "" {
		o.Arch = "llama"
	}
	if o.Tokenizer == "" {
		o.Tokenizer = "llama"
	}
	if o.KVHeads == 0 {
		o.KVHeads = o.Heads
	}
	if o.FFN == 0 {
		o.FFN = (o.Dim*8/3 + 31) / 32 * 32
	}
	if o.Context == 0 {
		o.Context = 2048
	}
	if o.Name == "" {
		o.Name = fmt.Sprintf("agora-random-%s-d%d-l%d-s%d", o.Arch, o.Dim, o.Layers, o.Seed)
	}
	ai, ok := archs[o.Arch]
	if !ok {
		return nil, fmt.Errorf("architecture %q is not supported (%s are)", o.Arch, archNames)
	}
	if o.Dim <= 0 || o.Layers <= 0 || o.Heads <= 0 || o.KVHeads <= 0 || o.Heads%o.KVHeads != 0 {
		return nil, fmt.Errorf("invalid shape: dim %d, layers %d, heads %d, kv heads %d (heads must divide by kv heads)", o.Dim, o.Layers, o.Heads, o.KVHeads)
	}
	if o.HeadDim == 0 {
		if o.Dim%o.Heads != 0 {
			return nil, fmt.Errorf("invalid shape: dim %d does not divide into %d heads (or set the head dim)", o.Dim, o.Heads)
		}
		o.HeadDim = o.Dim / o.Heads
	}
	if o.HeadDim <= 0 || o.HeadDim%2 != 0 {
		return nil, fmt.Errorf("invalid head dim %d: must be even", o.HeadDim)
	}
	if ai.gemma && o.SlidingWindow == 0 {
		o.SlidingWindow = 16
	}
	qDim := o.Heads * o.HeadDim
	blockElems, _, _ := o.Type.BlockSize()
	if o.Dim%blockElems != 0 || o.FFN%blockElems != 0 || qDim%blockElems != 0 {
		return nil, fmt.Errorf("dim %d, ffn %d and heads x head dim %d must be multiples of the %s block size %d", o.Dim, o.FFN, qDim, o.Type, blockElems)
	}
	var w gguf.Writer
	if err := addVocab(&w, o); err != nil {
		return nil, err
	}
	a := o.Arch
	w.Set("general.architecture", gguf.String(a))
	w.Set("general.name", gguf.String(o.Name))
	w.Set(a+".context_length", gguf.Uint32(uint32(o.Context)))
	w.Set(a+".embedding_length", gguf.Uint32(uint32(o.Dim)))
	w.Set(a+".block_count", gguf.Uint32(uint32(o.Layers)))
	w.Set(a+".feed_forward_length", gguf.Uint32(uint32(o.FFN)))
	w.Set(a+".attention.head_count", gguf.Uint32(uint32(o.Heads)))
	w.Set(a+".attention.head_count_kv", gguf.Uint32(uint32(o.KVHeads)))
	w.Set(a+".rope.dimension_count", gguf.Uint32(uint32(o.HeadDim)))
	switch {
	case ai.gemma:
		w.Set(a+".rope.freq_base", gguf.Float32(1e6)) // the global layers'; local ones use 10000
		w.Set(a+".attention.layer_norm_rms_epsilon", gguf.Float32(1e-6))
		w.Set(a+".attention.sliding_window", gguf.Uint32(uint32(o.SlidingWindow)))
		if o.Softcap != 0 {
			w.Set(a+".final_logit_softcapping", gguf.Float32(o.Softcap))
		}
		if o.RopeLinear != 0 {
			w.Set(a+".rope.scaling.type", gguf.String("linear"))
			w.Set(a+".rope.scaling.factor", gguf.Float32(o.RopeLinear))
		}
	case o.Arch == "qwen3":
		w.Set(a+".rope.freq_base", gguf.Float32(1e6))
		w.Set(a+".attention.layer_norm_rms_epsilon", gguf.Float32(1e-6))
	default:
		w.Set(a+".rope.freq_base", gguf.Float32(10000))
		w.Set(a+".attention.layer_norm_rms_epsilon", gguf.Float32(1e-5))
	}
	if ai.qkNorm || o.HeadDim != o.Dim/o.Heads {
		w.Set(a+".attention.key_length", gguf.Uint32(uint32(o.HeadDim)))
		w.Set(a+".attention.value_length", gguf.Uint32(uint32(o.HeadDim)))
	}

	rng := NewRNG(o.Seed)
	kvDim := o.KVHeads * o.HeadDim
	add := func(name string, typ gguf.TensorType, rows, cols int, std float64) error {
		typ = o.mixType(name, typ)
		vals := make([]float32, rows*cols)
		for i := range vals {
			vals[i] = float32((rng.Float64()*2 - 1) * std * math.Sqrt(3))
		}
		if o.Weights != nil {
			var err error
			if vals, err = o.given(name, rows*cols); err != nil {
				return err
			}
		}
		data, err := encode(typ, vals, cols)
		if err != nil {
			return err
		}
		dims := []uint64{uint64(cols)}
		if rows > 1 || strings.HasSuffix(name, "embd.weight") || strings.HasPrefix(name, "output.") {
			dims = append(dims, uint64(rows))
		}
		return w.AddTensor(name, typ, dims, data)
	}
	norm := func(name string, n int) error {
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(1 + (rng.Float64()*2-1)*0.1)
		}
		if o.Weights != nil {
			var err error
			if vals, err = o.given(name, n); err != nil {
				return err
			}
		}
		data, _ := encode(gguf.F32, vals, n)
		return w.AddTensor(name, gguf.F32, []uint64{uint64(n)}, data)
	}
	std := 1 / math.Sqrt(float64(o.Dim))
	if err := add("token_embd.weight", o.Type, o.Vocab, o.Dim, 1); err != nil {
		return nil, err
	}
	for l := 0; l < o.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		steps := []struct {
			name       string
			rows, cols int
			std        float64
		}{
			{"attn_q.weight", qDim, o.Dim, std}, {"attn_k.weight", kvDim, o.Dim, std},
			{"attn_v.weight", kvDim, o.Dim, std}, {"attn_output.weight", o.Dim, qDim, 1 / math.Sqrt(float64(qDim))},
			{"ffn_gate.weight", o.FFN, o.Dim, std}, {"ffn_up.weight", o.FFN, o.Dim, std},
			{"ffn_down.weight", o.Dim, o.FFN, 1 / math.Sqrt(float64(o.FFN))},
		}
		if err := norm(p+"attn_norm.weight", o.Dim); err != nil {
			return nil, err
		}
		for _, s := range steps {
			if err := add(p+s.name, o.Type, s.rows, s.cols, s.std); err != nil {
				return nil, err
			}
		}
		if err := norm(p+"ffn_norm.weight", o.Dim); err != nil {
			return nil, err
		}
		// Written after the llama tensors so those keep their random values.
		type vecSpec struct {
			name string
			n    int
		}
		var extra []vecSpec
		if ai.qkNorm {
			extra = append(extra, vecSpec{"attn_q_norm.weight", o.HeadDim}, vecSpec{"attn_k_norm.weight", o.HeadDim})
		}
		if ai.gemma {
			extra = append(extra, vecSpec{"post_attention_norm.weight", o.Dim}, vecSpec{"post_ffw_norm.weight", o.Dim})
		}
		for _, e := range extra {
			if err := norm(p+e.name, e.n); err != nil {
				return nil, err
			}
		}
		if o.Arch == "qwen2" {
			for _, b := range []struct {
				name string
				n    int
			}{{"attn_q.bias", qDim}, {"attn_k.bias", kvDim}, {"attn_v.bias", kvDim}} {
				vals := make([]float32, b.n)
				for i := range vals {
					vals[i] = float32((rng.Float64()*2 - 1) * 0.1)
				}
				data, _ := encode(gguf.F32, vals, b.n)
				if err := w.AddTensor(p+b.name, gguf.F32, []uint64{uint64(b.n)}, data); err != nil {
					return nil, err
				}
			}
		}
	}
	if err := norm("output_norm.weight", o.Dim); err != nil {
		return nil, err
	}
	if !o.Tied {
		if err := add("output.weight", o.Type, o.Vocab, o.Dim, std*4); err != nil {
			return nil, err
		}
	}
	return &w, nil
}

// given is the value of tensor name from o.Weights, checked for size.
func (o GenOptions) given(name string, n int) ([]float32, error) {
	v, ok := o.Weights[name]
	if !ok {
		return nil, fmt.Errorf("no weights given for tensor %s", name)
	}
	if len(v) != n {
		return nil, fmt.Errorf("tensor %s: %d values given, want %d", name, len(v), n)
	}
	return v, nil
}

// encode stores values in a tensor type (rows of cols elements).
func encode(typ gguf.TensorType, vals []float32, cols int) ([]byte, error) {
	switch typ {
	case gguf.F32:
		out := make([]byte, 4*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
		return out, nil
	case gguf.F16:
		out := make([]byte, 2*len(vals))
		for i, v := range vals {
			binary.LittleEndian.PutUint16(out[2*i:], F32ToF16(v))
		}
		return out, nil
	case gguf.BF16:
		out := make([]byte, 2*len(vals))
		for i, v := range vals {
			b := math.Float32bits(v)
			b += 0x7fff + (b>>16)&1 // round to nearest even
			binary.LittleEndian.PutUint16(out[2*i:], uint16(b>>16))
		}
		return out, nil
	}
	return encodeQuant(typ, vals)
}

// learnMerges runs byte-pair merging over words (lists of symbols) and
// returns the merged pairs in order, up to n.
func learnMerges(words [][]string, n int) [][2]string {
	var merges [][2]string
	for len(merges) < n {
		counts := map[[2]string]int{}
		for _, w := range words {
			for i := 0; i+1 < len(w); i++ {
				counts[[2]string{w[i], w[i+1]}]++
			}
		}
		if len(counts) == 0 {
			break
		}
		pairs := make([][2]string, 0, len(counts))
		for p := range counts {
			pairs = append(pairs, p)
		}
		sort.Slice(pairs, func(i, j int) bool {
			if counts[pairs[i]] != counts[pairs[j]] {
				return counts[pairs[i]] > counts[pairs[j]]
			}
			return pairs[i][0]+"\x00"+pairs[i][1] < pairs[j][0]+"\x00"+pairs[j][1]
		})
		best := pairs[0]
		merges = append(merges, best)
		for wi, w := range words {
			var nw []string
			for i := 0; i < len(w); i++ {
				if i+1 < len(w) && w[i] == best[0] && w[i+1] == best[1] {
					nw = append(nw, w[i]+w[i+1])
					i++
				} else {
					nw = append(nw, w[i])
				}
			}
			words[wi] = nw
		}
	}
	return merges
}

func addVocab(w *gguf.Writer, o GenOptions) error {
	var tokens []string
	var types []int32
	var scores []float32
	seen := map[string]bool{}
	push := func(s string, typ int32, score float32) {
		if seen[s] {
			return
		}
		seen[s] = true
		tokens = append(tokens, s)
		types = append(types, typ)
		scores = append(scores, score)
	}
	var words [][]string
	switch o.Tokenizer {
	case "llama":
		push("<unk>", tokenizer.TypeUnknown, 0)
		push("<s>", tokenizer.TypeControl, 0)
		push("</s>", tokenizer.TypeControl, 0)
		extraControls(o, push)
		for b := 0; b < 256; b++ {
			push(fmt.Sprintf("<0x%02X>", b), tokenizer.TypeByte, 0)
		}
		for _, word := range strings.Fields(corpus) {
			var syms []string
			for _, r := range "▁" + word {
				syms = append(syms, string(r))
				push(string(r), tokenizer.TypeNormal, -1e6)
			}
			words = append(words, syms)
		}
	case "gpt2":
		push("<|endoftext|>", tokenizer.TypeControl, 0)
		push("<|im_start|>", tokenizer.TypeControl, 0)
		push("<|im_end|>", tokenizer.TypeControl, 0)
		extraControls(o, push)
		for b := 0; b < 256; b++ {
			push(tokenizer.ByteLevel(string([]byte{byte(b)})), tokenizer.TypeNormal, 0)
		}
		for i, word := range strings.Fields(corpus) {
			if i > 0 {
				word = " " + word
			}
			var syms []string
			for _, r := range tokenizer.ByteLevel(word) {
				syms = append(syms, string(r))
			}
			words = append(words, syms)
		}
	default:
		return fmt.Errorf("tokenizer %q not supported (llama, gpt2)", o.Tokenizer)
	}
	if o.Vocab < len(tokens) {
		return fmt.Errorf("vocab %d is smaller than the %d base tokens of the %s tokenizer", o.Vocab, len(tokens), o.Tokenizer)
	}
	merges := learnMerges(words, o.Vocab-len(tokens))
	var mergeStrs []string
	for i, m := range merges {
		push(m[0]+m[1], tokenizer.TypeNormal, -float32(i))
		mergeStrs = append(mergeStrs, m[0]+" "+m[1])
	}
	// Fill the rest with merges of existing pieces, so every id decodes to
	// text (a random model then writes words, not empty tokens).
	base := len(tokens) - len(merges)
	var pieces []string
	for i := base; i < len(tokens); i++ {
		if o.Tokenizer == "gpt2" || types[i] == tokenizer.TypeNormal {
			pieces = append(pieces, tokens[i])
		}
	}
	for i := 0; len(tokens) < o.Vocab && i < len(pieces); i++ {
		for j := 0; len(tokens) < o.Vocab && j < len(pieces); j++ {
			a, b := pieces[len(pieces)-1-i], pieces[j]
			if seen[a+b] || len(a+b) > 16 {
				continue
			}
			push(a+b, tokenizer.TypeNormal, -float32(len(mergeStrs)))
			mergeStrs = append(mergeStrs, a+" "+b)
		}
	}
	for i := 0; len(tokens) < o.Vocab; i++ {
		push(fmt.Sprintf("<unused%d>", i), tokenizer.TypeUnused, -1e9)
	}
	w.Set("tokenizer.ggml.model", gguf.String(o.Tokenizer))
	w.Set("tokenizer.ggml.tokens", gguf.Strings(tokens))
	w.Set("tokenizer.ggml.token_type", gguf.Int32s(types))
	if o.Tokenizer == "llama" {
		w.Set("tokenizer.ggml.scores", gguf.Float32s(scores))
		w.Set("tokenizer.ggml.unknown_token_id", gguf.Uint32(0))
		w.Set("tokenizer.ggml.bos_token_id", gguf.Uint32(1))
		w.Set("tokenizer.ggml.eos_token_id", gguf.Uint32(2))
		w.Set("tokenizer.chat_template", gguf.String(archTemplate(o.Arch, llama2Template)))
	} else {
		w.Set("tokenizer.ggml.merges", gguf.Strings(mergeStrs))
		if o.Pre != "" {
			w.Set("tokenizer.ggml.pre", gguf.String(o.Pre))
		}
		w.Set("tokenizer.ggml.bos_token_id", gguf.Uint32(0))
		w.Set("tokenizer.ggml.eos_token_id", gguf.Uint32(2))
		w.Set("tokenizer.chat_template", gguf.String(archTemplate(o.Arch, chatMLTemplate)))
	}
	return nil
}

// extraControls adds the turn markers of an architecture's chat template
// (only for the architectures added with templates, so older generated
// files keep their token ids).
func extraControls(o GenOptions, push func(string, int32, float32)) {
	switch o.Arch {
	case "gemma3":
		push("<start_of_turn>", tokenizer.TypeControl, 0)
		push("<end_of_turn>", tokenizer.TypeControl, 0)
	case "qwen3":
		push("<|im_start|>", tokenizer.TypeControl, 0)
		push("<|im_end|>", tokenizer.TypeControl, 0)
	}
}

// archTemplate is the chat template written for an architecture.
func archTemplate(arch, dflt string) string {
	switch arch {
	case "gemma3":
		return gemma3Template
	case "qwen3":
		return qwen3Template
	}
	return dflt
}

// Chat templates written into generated models (executed by ChatTemplate).
const (
	// Llama-2-chat's published template.
	llama2Template = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
	chatMLTemplate = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

	// Qwen3's and Gemma 3's published templates (tool branches abridged).
	qwen3Template = `{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %}`

	gemma3Template = `{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
`
)
