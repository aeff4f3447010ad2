package store

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

func TestCacheOverlayAndWrite(t *testing.T) {
	tree, err := OpenMemTree()
	if err != nil {
		t.Fatal(err)
	}
	tree.Set([]byte("a/1"), []byte("x"))
	tree.Set([]byte("a/2"), []byte("y"))
	tree.Set([]byte("b/1"), []byte("z"))
	c := NewCache(tree)
	c.Set([]byte("a/3"), []byte("new"))
	c.Delete([]byte("a/1"))
	c.Set([]byte("a/2"), []byte("y2"))
	var got []string
	c.Iterate([]byte("a/"), func(k, v []byte) bool {
		got = append(got, fmt.Sprintf("%s=%s", k, v))
		return true
	})
	if fmt.Sprint(got) != "[a/2=y2 a/3=new]" {
		t.Fatalf("iterate %v", got)
	}
	if tree.Get([]byte("a/1")) == nil || c.Get([]byte("a/1")) != nil {
		t.Fatal("cache delete leaked or was lost")
	}
	h0 := tree.WorkingHash()
	c.Write()
	if bytes.Equal(h0, tree.WorkingHash()) || tree.Get([]byte("a/1")) != nil || string(tree.Get([]byte("a/3"))) != "new" {
		t.Fatal("write did not apply")
	}
	// Dropping a cache discards its writes.
	d := NewCache(tree)
	d.Set([]byte("c"), []byte("1"))
	if tree.Get([]byte("c")) != nil {
		t.Fatal("cache wrote through")
	}
}

func TestProofsAgainstRoot(t *testing.T) {
	tree, _ := OpenMemTree()
	for i := 0; i < 100; i++ {
		tree.Set([]byte(fmt.Sprintf("k/%03d", i)), []byte(fmt.Sprintf("v%d", i)))
	}
	if _, _, err := tree.Commit(); err != nil {
		t.Fatal(err)
	}
	snap, err := tree.Snapshot(1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := snap.Proof([]byte("k/042"))
	if err != nil {
		t.Fatal(err)
	}
	if !VerifyProof(snap.Hash(), p, []byte("k/042"), []byte("v42")) {
		t.Fatal("membership proof failed")
	}
	if VerifyProof(snap.Hash(), p, []byte("k/042"), []byte("v43")) {
		t.Fatal("proof verified a wrong value")
	}
	np, err := snap.Proof([]byte("k/500"))
	if err != nil {
		t.Fatal(err)
	}
	if !VerifyProof(snap.Hash(), np, []byte("k/500"), nil) {
		t.Fatal("absence proof failed")
	}
	if !bytes.Equal(PrefixEnd([]byte{1, 0xff}), []byte{2}) || PrefixEnd([]byte{0xff}) != nil {
		t.Fatal("PrefixEnd")
	}
}

// Snapshot reads run while the working tree is written and committed (the
// node serves queries during blocks); under -race this caught IAVL detaching
// a shared node's children while a query read them.
func TestSnapshotReadsDuringWrites(t *testing.T) {
	tr, err := OpenMemTree()
	if err != nil {
		t.Fatal(err)
	}
	key := func(i int) []byte { return []byte(fmt.Sprintf("k/%05d", i)) }
	for i := 0; i < 2000; i++ {
		tr.Set(key(i), []byte{byte(i)})
	}
	if _, _, err := tr.Commit(); err != nil {
		t.Fatal(err)
	}
	snap, err := tr.Snapshot(tr.Version())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				n := 0
				snap.Iterate([]byte("k/"), func(k, v []byte) bool {
					if snap.Get(k) == nil {
						t.Errorf("key %s vanished from the snapshot", k)
					}
					n++
					return true
				})
				if n != 2000 {
					t.Errorf("snapshot iterated %d keys, want 2000", n)
				}
			}
		}()
	}
	for v := 0; v < 5; v++ {
		for i := 0; i < 2000; i += 3 {
			tr.Set(key(i), []byte{byte(i + v)})
		}
		if _, _, err := tr.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
}
