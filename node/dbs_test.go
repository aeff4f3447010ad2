package node

import (
	"fmt"
	"sync"
	"testing"

	dbm "github.com/cometbft/cometbft-db"

	"github.com/agoranet/agora/internal/kvlog"
)

// TestGuardedDBAfterClose: a goroutine CometBFT did not wait for may use a
// store after the node closed it; it finds nothing and its writes are
// dropped, instead of Pebble panicking. Reads racing with Close are safe.
func TestGuardedDBAfterClose(t *testing.T) {
	raw, err := dbm.NewPebbleDBWithOpts("blockstore", t.TempDir(), kvlog.Options())
	if err != nil {
		t.Fatal(err)
	}
	d := &guardedDB{db: raw}
	if err := d.Set([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if v, err := d.Get([]byte("a")); err != nil || string(v) != "1" {
		t.Fatalf("get before close: %q %v", v, err)
	}
	it, err := d.Iterator(nil, nil)
	if err != nil || !it.Valid() || string(it.Key()) != "a" {
		t.Fatalf("iterator before close: %v", err)
	}
	it.Close()

	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 2000; j++ {
				d.Get([]byte("a"))
				d.Set([]byte(fmt.Sprint(i, j)), []byte("x"))
			}
		}()
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	if v, err := d.Get([]byte("a")); err != nil || v != nil {
		t.Fatalf("get after close: %q %v", v, err)
	}
	if ok, err := d.Has([]byte("a")); err != nil || ok {
		t.Fatalf("has after close: %v %v", ok, err)
	}
	if err := d.SetSync([]byte("b"), []byte("2")); err != nil {
		t.Fatalf("a write after close: %v", err)
	}
	b := d.NewBatch()
	b.Set([]byte("c"), []byte("3"))
	if err := b.WriteSync(); err != nil {
		t.Fatalf("a batch after close: %v", err)
	}
	b.Close()
	for _, it := range []func() (dbm.Iterator, error){
		func() (dbm.Iterator, error) { return d.Iterator(nil, nil) },
		func() (dbm.Iterator, error) { return d.ReverseIterator(nil, nil) },
	} {
		if i, err := it(); err != nil || i.Valid() || i.Close() != nil {
			t.Fatalf("an iterator after close: %v", err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatalf("a second close: %v", err)
	}
}
