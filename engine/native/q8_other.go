//go:build !amd64

package native

func dotQ8Sums(w []byte, x []int8, sums []int32) { dotQ8SumsGo(w, x, sums) }
