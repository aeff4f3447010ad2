package gateway

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/agoranet/agora/testutil/testkey"
)

// TestLegacyTentativeReceipts: a store written by a version with early
// receipts may hold tentative records (stored as the provider sent them
// ahead of its synced write) and confirmation marks. It opens cleanly: a
// confirmed one reads as any receipt; one never confirmed is ignored —
// not listed, found, billed or checked — since its provider may have lost
// it; a new receipt is stored after them, with no tentative flag.
func TestLegacyTentativeReceipts(t *testing.T) {
	priv, _ := testkey.Pair("prov")
	dir := t.TempDir()
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	rs := make([]*StoredReceipt, 4)
	for i := range rs {
		rs[i] = storedFor(t, priv, uint64(i))
		rs[i].Seq = uint64(i + 1)
	}
	// Written as the earlier version wrote them: 0 a plain receipt, 1 and 3
	// tentative, 2 tentative and confirmed.
	b := st.db.NewBatch()
	for i, r := range rs {
		bz, _ := json.Marshal(r)
		if i != 0 {
			bz = []byte(strings.Replace(string(bz), `{"seq"`, `{"tentative":true,"seq"`, 1))
		}
		b.Set(append([]byte("r/"), binary.BigEndian.AppendUint64(nil, r.Seq)...), bz, nil)
		b.Set([]byte("ri/"+r.ID), binary.BigEndian.AppendUint64(nil, r.Seq), nil)
	}
	b.Set(append([]byte("rk/"), binary.BigEndian.AppendUint64(nil, rs[2].Seq)...), []byte{1}, nil)
	if err := st.db.CommitSync(b); err != nil {
		t.Fatal(err)
	}
	b.Close()
	st.Close()

	st = testStore(t, dir)
	list, err := st.Receipts(0, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range list {
		ids = append(ids, r.ID)
	}
	if want := []string{rs[0].ID, rs[2].ID}; !slices.Equal(ids, want) {
		t.Fatalf("listed %v, want %v (the plain and the confirmed receipt)", ids, want)
	}
	if r, err := st.Receipt(rs[2].ID); err != nil || *r != *rs[2] {
		t.Fatalf("the confirmed receipt: %+v %v, want %+v", r, err, rs[2])
	}
	for _, i := range []int{1, 3} {
		if _, err := st.Receipt(rs[i].ID); !errors.Is(err, pebble.ErrNotFound) {
			t.Fatalf("unconfirmed receipt %d found: %v", i, err)
		}
	}
	var checked []uint64
	billed, err := st.BilledByProvider(func(r StoredReceipt) bool { checked = append(checked, r.Index); return true })
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{0, 2}; !slices.Equal(checked, want) {
		t.Fatalf("checked %v, want %v", checked, want)
	}
	if got, want := billed["payer/"+rs[0].Provider][1], rs[0].Amount+rs[2].Amount; got != want {
		t.Fatalf("billed %d, want %d", got, want)
	}

	next := storedFor(t, priv, 4)
	if err := st.AddReceipt(next); err != nil {
		t.Fatal(err)
	}
	if next.Seq != 5 {
		t.Fatalf("new receipt stored as seq %d, want 5 (after the legacy ones)", next.Seq)
	}
	bz, c, err := st.db.Get(append([]byte("r/"), binary.BigEndian.AppendUint64(nil, next.Seq)...))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(bz), "tentative") {
		t.Fatalf("new receipt stored with a tentative flag: %s", bz)
	}
	c.Close()
	if list, err := st.Receipts(0, 100, ""); err != nil || len(list) != 3 || list[2].ID != next.ID {
		t.Fatalf("listed after a new receipt: %+v %v", list, err)
	}
}
