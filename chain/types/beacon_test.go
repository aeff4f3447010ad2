package types

import (
	"bytes"
	"strings"
	"testing"
)

func beaconFixture(n int) *BeaconTx {
	b := &BeaconTx{Epoch: 7}
	for i := 0; i < n; i++ {
		addr := bytes.Repeat([]byte{byte(i + 1)}, AddressLen)
		b.Entries = append(b.Entries, BeaconEntry{Validator: addr, Proof: bytes.Repeat([]byte{byte(0x80 + i)}, VRFProofLen)})
	}
	return b
}

// TestBeaconTxCodec: a beacon tx round-trips, and every malformed variant is
// refused with an error that says what is wrong.
func TestBeaconTxCodec(t *testing.T) {
	good := EncodeBeaconTx(beaconFixture(3))
	b, err := DecodeBeaconTx(good)
	if err != nil {
		t.Fatal(err)
	}
	if b.Epoch != 7 || len(b.Entries) != 3 || b.Entries[2].Validator[0] != 3 || b.Entries[1].Proof[0] != 0x81 {
		t.Fatalf("decoded %+v", b)
	}
	if !bytes.Equal(EncodeBeaconTx(b), good) {
		t.Fatal("re-encoding differs")
	}
	if _, err := DecodeTx(good); err == nil {
		t.Fatal("a beacon tx decodes as a user tx")
	}
	unsorted := beaconFixture(3)
	unsorted.Entries[0], unsorted.Entries[2] = unsorted.Entries[2], unsorted.Entries[0]
	dup := beaconFixture(2)
	dup.Entries[1].Validator = dup.Entries[0].Validator
	for _, c := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"empty", nil, "wrong magic"},
		{"user tx", []byte{0x0a, 0x02, 0x08, 0x01}, "wrong magic"},
		{"magic only", []byte(BeaconTxMagic), "need at least 10"},
		{"no entries", EncodeBeaconTx(&BeaconTx{Epoch: 1}), "0 entries"},
		{"truncated", good[:len(good)-1], "need 300 bytes, have 299"},
		{"trailing byte", append(bytes.Clone(good), 0), "need 300 bytes, have 301"},
		{"unsorted", EncodeBeaconTx(unsorted), "strictly ascending"},
		{"duplicate validator", EncodeBeaconTx(dup), "strictly ascending"},
	} {
		if _, err := DecodeBeaconTx(c.raw); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

func TestVoteExtensionCodec(t *testing.T) {
	proof := bytes.Repeat([]byte{9}, VRFProofLen)
	raw := EncodeVoteExtension(42, proof)
	n, p, err := DecodeVoteExtension(raw)
	if err != nil || n != 42 || !bytes.Equal(p, proof) {
		t.Fatalf("round trip: %d %x %v", n, p, err)
	}
	for _, bad := range [][]byte{raw[:len(raw)-1], append(bytes.Clone(raw), 1), []byte("x"), EncodeBeaconTx(beaconFixture(1))} {
		if _, _, err := DecodeVoteExtension(bad); err == nil {
			t.Errorf("%x decoded", bad)
		}
	}
}

// FuzzDecodeBeaconTx: hostile bytes never panic; whatever decodes is
// canonical (re-encodes to the same bytes), sorted, and never a user tx.
func FuzzDecodeBeaconTx(f *testing.F) {
	f.Add(EncodeBeaconTx(beaconFixture(1)))
	f.Add(EncodeBeaconTx(beaconFixture(4)))
	f.Add([]byte(BeaconTxMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := DecodeBeaconTx(raw)
		if err != nil {
			if b != nil {
				t.Fatal("decoded beacon tx returned with an error")
			}
			return
		}
		if !bytes.Equal(EncodeBeaconTx(b), raw) {
			t.Fatal("not canonical: re-encoding differs")
		}
		if len(b.Entries) == 0 || len(b.Entries) > MaxBeaconEntries {
			t.Fatalf("%d entries", len(b.Entries))
		}
		for i, e := range b.Entries {
			if len(e.Validator) != AddressLen || len(e.Proof) != VRFProofLen {
				t.Fatalf("entry %d sizes %d/%d", i, len(e.Validator), len(e.Proof))
			}
			if i > 0 && bytes.Compare(b.Entries[i-1].Validator, e.Validator) >= 0 {
				t.Fatal("entries not strictly ascending")
			}
		}
		if _, err := DecodeTx(raw); err == nil {
			t.Fatal("a beacon tx decodes as a user tx")
		}
	})
}
