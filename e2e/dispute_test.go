package e2e

import (
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/receipt"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/testutil/testnet"
)

// TestClientDisputes: with sampling off (audit rates 0), only disputes can
// catch a provider. The client disputes a fabricated receipt: both
// validators' workers fetch its opening, re-execute it and report; the
// provider is slashed, the client refunded the receipt and its bond. A
// dispute of an honest receipt finds nothing and its bond goes to the
// honest provider at the deadline.
func TestClientDisputes(t *testing.T) {
	params := types.DefaultParams()
	params.EpochLength, params.CommitWindow, params.OpeningWindow = 10, 4, 40
	params.AuditFloorBps, params.AuditCeilingBps = 0, 0
	a := startAuditNet(t, params, 3)
	nw, ctx, gw := a.nw, a.ctx, a.gw
	honest := a.provider(0, a.backend(a.real))
	faker := a.provider(1, a.cheater("tiny-fake", func(int64) bool { return true }))
	a.chat("tiny", "is this answer real?")
	a.chat("tiny-fake", "is this answer real?")
	byProv := map[string]gateway.StoredReceipt{}
	for _, r := range a.receipts() {
		byProv[r.Provider] = r
	}
	c := nw.Client(0)
	signer := c.NewSigner(nw.Accounts[0])
	waitCommitted := func(r gateway.StoredReceipt) {
		poll.Until(t, 60*time.Second, fmt.Sprintf("receipt %s committed, past its epoch's commit deadline", r.ID), func() (bool, string) {
			var ep api.EpochView
			var cm api.CommitmentView
			if err := c.Query(ctx, fmt.Sprintf("/epoch/%d", r.Epoch), 0, &ep); err != nil {
				return false, fmt.Sprintf("epoch %d: %v", r.Epoch, err)
			}
			if err := c.Query(ctx, fmt.Sprintf("/commitment/%d/%s", r.Epoch, r.Provider), 0, &cm); err != nil {
				return false, fmt.Sprintf("commitment of epoch %d: %v", r.Epoch, err)
			}
			st, err := c.Status(ctx)
			if err != nil {
				return false, fmt.Sprintf("status: %v", err)
			}
			h := st.SyncInfo.LatestBlockHeight
			return h > ep.CommitDeadline, fmt.Sprintf("height %d, commit deadline %d", h, ep.CommitDeadline)
		})
	}
	// The fabricated receipt is disputed with the CLI through the gateway;
	// the honest one with a raw MsgDisputeReceipt from the client's key.
	disputeCLI := func(id string) (string, error) {
		out, err := exec.Command(agoraBin, "receipt", "dispute", id, "--gateway", gw.URL()).CombinedOutput()
		return string(out), err
	}
	dispute := func(r gateway.StoredReceipt, viaCLI bool) {
		waitCommitted(r)
		if viaCLI {
			out, err := disputeCLI(r.ID)
			if err != nil || !strings.Contains(out, "disputed") {
				t.Fatalf("agora receipt dispute: %v\n%s", err, out)
			}
			return
		}
		sr, err := receipt.Decode(r.Encoded)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := signer.Send(ctx, &types.MsgDisputeReceipt{Receipt: sr.Bytes, ReceiptSignature: sr.Signature}); err != nil {
			t.Fatalf("dispute %s: %v", r.ID, err)
		}
	}
	fake, real2 := byProv[faker.Address().String()], byProv[honest.Address().String()]
	if fake.ID == "" || real2.ID == "" {
		t.Fatalf("receipts: %+v", byProv)
	}
	prov := a.view
	bondFake, bondHonest := prov(faker).Bonded, prov(honest).Bonded
	redeemed := func(p *provider.Provider) uint64 {
		var chans []api.ChannelView
		if err := c.Query(ctx, "/channels/provider/"+p.Address().String(), 0, &chans); err != nil {
			t.Fatal(err)
		}
		var sum uint64
		for _, ch := range chans {
			sum += ch.Redeemed
		}
		return sum
	}
	// The client's balance is read before its disputes: the validators may
	// confirm the fabricated receipt's dispute before the next line runs, so
	// every movement after this point is accounted for — its fees, two bonds
	// paid, one bond and the refund back.
	cliAddr := testnet.Addr(nw.Accounts[0])
	cli1, _ := c.Account(ctx, cliAddr)
	cliFees1 := feesPaid(t, c, cliAddr)
	dispute(fake, true)
	dispute(real2, false)
	// Disputing it again is refused: still open, or already confirmed by the validators.
	if out, err := disputeCLI(fake.ID); err == nil || !(strings.Contains(out, "already disputed") || strings.Contains(out, "already applied")) {
		t.Fatalf("a second dispute: %v\n%q", err, out)
	}
	if out, err := disputeCLI(strings.Repeat("ab", 32)); err == nil || !strings.Contains(out, "no receipt") {
		t.Fatalf("an unknown receipt: %v\n%s", err, out)
	}
	hon1, _ := c.Account(ctx, honest.Address())
	fees1, red1 := feesPaid(t, c, honest.Address()), redeemed(honest)

	poll.Until(t, 60*time.Second, "the disputed fabricated receipt to be confirmed", func() (bool, string) {
		v := prov(faker)
		return v.Faults > 0, fmt.Sprintf("faker %+v", v)
	})
	if got, want := prov(faker).Bonded, bondFake-bondFake*params.SlashBps["inference/fabricated"]/10000; got != want {
		t.Fatalf("faker bond %d, want %d", got, want)
	}
	// The honest receipt's dispute expires: the honest provider takes the bond.
	poll.Until(t, 60*time.Second, "the honest receipt's dispute to expire", func() (bool, string) {
		var ds []api.DisputeView
		if err := c.Query(ctx, "/disputes", 0, &ds); err != nil {
			t.Fatal(err)
		}
		return len(ds) == 0, fmt.Sprintf("disputes still open: %+v", ds)
	})
	if v := prov(honest); v.Faults != 0 || v.Bonded != bondHonest {
		t.Fatalf("honest provider after a dispute: %+v", v)
	}
	cli2, _ := c.Account(ctx, cliAddr)
	cliFees := feesPaid(t, c, cliAddr) - cliFees1
	if want := cli1.Balance - cliFees - 2*params.DisputeBond + params.DisputeBond + fake.Amount; cli2.Balance != want {
		t.Fatalf("client balance %d, want %d (fees %d, two bonds paid, refund %d and one bond back)", cli2.Balance, want, cliFees, fake.Amount)
	}
	hon2, _ := c.Account(ctx, honest.Address())
	fees2, red2 := feesPaid(t, c, honest.Address()), redeemed(honest)
	if want := hon1.Balance + params.DisputeBond - (fees2 - fees1) + (red2 - red1); hon2.Balance != want {
		t.Fatalf("honest provider balance %d, want %d (the dispute bond)", hon2.Balance, want)
	}
}
