package tokenizer

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// GPT-2 byte-level BPE: bytes are mapped to printable runes, text is split by
// the GPT-2 pre-tokenizer, and each piece is merged pairwise by merge rank.

var byteToRune, runeToByte = func() ([256]rune, map[rune]byte) {
	var b2r [256]rune
	r2b := map[rune]byte{}
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			b2r[b] = rune(b)
		} else {
			b2r[b] = rune(256 + n)
			n++
		}
		r2b[b2r[b]] = byte(b)
	}
	return b2r, r2b
}()

// ByteLevel maps raw bytes to GPT-2's printable-rune form.
func ByteLevel(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		sb.WriteRune(byteToRune[s[i]])
	}
	return sb.String()
}

func decodeByteLevel(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if b, ok := runeToByte[r]; ok {
			out = append(out, b)
		} else {
			out = append(out, string(r)...)
		}
	}
	return string(out)
}

// preTokenize splits text like GPT-2's pattern
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func preTokenize(text string) []string {
	var out []string
	rs := []rune(text)
	n := len(rs)
	class := func(r rune) int {
		switch {
		case unicode.IsLetter(r):
			return 1
		case unicode.IsNumber(r):
			return 2
		case unicode.IsSpace(r):
			return 3
		}
		return 4
	}
	for i := 0; i < n; {
		// contractions
		if rs[i] == '\'' && i+1 < n {
			matched := false
			for _, c := range []string{"s", "t", "re", "ve", "m", "ll", "d"} {
				cr := []rune(c)
				if i+1+len(cr) <= n && string(rs[i+1:i+1+len(cr)]) == c {
					out = append(out, string(rs[i:i+1+len(cr)]))
					i += 1 + len(cr)
					matched = true
					break
				}
			}
			if matched {
				continue
			}
		}
		j := i
		if rs[j] == ' ' && j+1 < n && class(rs[j+1]) != 3 {
			j++
		}
		if c := class(rs[j]); c != 3 {
			k := j
			for k < n && class(rs[k]) == c {
				k++
			}
			out = append(out, string(rs[i:k]))
			i = k
			continue
		}
		// whitespace run: \s+(?!\S) leaves the last space to prefix the next word
		k := i
		for k < n && class(rs[k]) == 3 {
			k++
		}
		if k < n && k-i > 1 {
			k--
		}
		out = append(out, string(rs[i:k]))
		i = k
	}
	return out
}

func (t *Tokenizer) encodeBPE(text string) []int {
	var out []int
	var words []string
	switch t.Pre {
	case "llama3", "llama-bpe", "smaug-bpe":
		words = preTokenizeLlama3(text, 3)
	case "qwen2":
		words = preTokenizeLlama3(text, 1)
	case "gpt-2":
		words = preTokenize(text)
	default:
		words = preTokenizeDefault(text)
	}
	for _, word := range words {
		bl := ByteLevel(word)
		var parts []string
		for i := 0; i < len(bl); {
			_, n := utf8.DecodeRuneInString(bl[i:])
			parts = append(parts, bl[i:i+n])
			i += n
		}
		for len(parts) > 1 {
			best, bestRank := -1, int(^uint(0)>>1)
			for i := 0; i+1 < len(parts); i++ {
				if r, ok := t.bpeRanks[[2]string{parts[i], parts[i+1]}]; ok && r < bestRank {
					best, bestRank = i, r
				}
			}
			if best < 0 {
				break
			}
			parts[best] += parts[best+1]
			parts = append(parts[:best+1], parts[best+2:]...)
		}
		for _, p := range parts {
			if id, ok := t.toID[p]; ok {
				out = append(out, id)
			} else if t.UNK >= 0 {
				out = append(out, t.UNK)
			}
		}
	}
	return out
}

// preTokenizeLlama3 splits text like the Llama-3 pattern (maxDigits 3) and
// the Qwen2 pattern (maxDigits 1):
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// Alternatives are tried in order at each position, as a regex engine would.
func preTokenizeLlama3(text string, maxDigits int) []string {
	rs := []rune(text)
	n := len(rs)
	isL := func(i int) bool { return i < n && unicode.IsLetter(rs[i]) }
	isN := func(i int) bool { return i < n && unicode.IsNumber(rs[i]) }
	isS := func(i int) bool { return i < n && unicode.IsSpace(rs[i]) }
	isNL := func(i int) bool { return i < n && (rs[i] == '\r' || rs[i] == '\n') }
	var out []string
	for i := 0; i < n; {
		end := -1
		// contractions, case-insensitive
		if rs[i] == '\'' {
			for _, c := range []string{"s", "t", "re", "ve", "m", "ll", "d"} {
				if i+1+len(c) <= n && strings.EqualFold(string(rs[i+1:i+1+len(c)]), c) {
					end = i + 1 + len(c)
					break
				}
			}
		}
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if end < 0 {
			j := i
			if !isL(j) && !isN(j) && !isNL(j) && isL(j+1) {
				j++
			}
			if isL(j) {
				for isL(j) {
					j++
				}
				end = j
			}
		}
		// \p{N}{1,maxDigits}
		if end < 0 && isN(i) {
			j := i
			for isN(j) && j-i < maxDigits {
				j++
			}
			end = j
		}
		// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
		if end < 0 {
			j := i
			if rs[j] == ' ' {
				j++
			}
			k := j
			for k < n && !isS(k) && !isL(k) && !isN(k) {
				k++
			}
			if k > j {
				for isNL(k) {
					k++
				}
				end = k
			}
		}
		// \s*[\r\n]+
		if end < 0 && isS(i) {
			j := i
			last := -1
			for isS(j) {
				if isNL(j) {
					last = j
				}
				j++
			}
			if last >= 0 {
				end = last + 1
			} else {
				// \s+(?!\S): leave the last space for the next word; else \s+
				end = j
				if j < n && j-i > 1 {
					end = j - 1
				}
			}
		}
		if end < 0 { // a lone character no alternative takes
			end = i + 1
		}
		out = append(out, string(rs[i:end]))
		i = end
	}
	return out
}

// llama.cpp's "default" BPE pre-tokenizer (used when tokenizer.ggml.pre is
// absent or "default") applies several patterns in turn; every match and
// every gap between matches becomes a fragment for the next pattern.
var (
	defaultPunct  = regexp.MustCompile(`[\p{P}\$\+<=>\^~\|]+`)
	defaultDigits = regexp.MustCompile(`\p{N}+`)
	defaultThree  = regexp.MustCompile(`[0-9][0-9][0-9]`)
)

func splitByRegexp(frags []string, re *regexp.Regexp) []string {
	var out []string
	for _, f := range frags {
		last := 0
		for _, m := range re.FindAllStringIndex(f, -1) {
			if m[0] > last {
				out = append(out, f[last:m[0]])
			}
			out = append(out, f[m[0]:m[1]])
			last = m[1]
		}
		if last < len(f) {
			out = append(out, f[last:])
		}
	}
	return out
}

func preTokenizeDefault(text string) []string {
	frags := splitByRegexp([]string{text}, defaultPunct)
	var gpt []string
	for _, f := range frags {
		gpt = append(gpt, preTokenize(f)...)
	}
	return splitByRegexp(splitByRegexp(gpt, defaultDigits), defaultThree)
}
