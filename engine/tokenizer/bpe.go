package tokenizer

import (
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
	for _, word := range preTokenize(text) {
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
