package gateway

import "testing"

// testStore opens a gateway store in dir (a fresh one if dir is ""),
// closed with the test.
func testStore(t *testing.T, dir string) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
