package e2e

import (
	"context"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"path/filepath"
	"testing"
	"time"

	"github.com/openai/openai-go"

	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/testutil/poll"
	"github.com/agoranet/agora/validator"
)

// TestAudit: after an epoch's seed exists, the auditor fetches each
// provider's sampled openings, checks them against the committed roots and
// re-executes them bit for bit: honest work passes; a transcript altered
// after the fact is caught as fabricated output.
func TestAudit(t *testing.T) {
	in := startInference(t)
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		if _, err := in.oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: in.model,
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(fmt.Sprintf("audit me %d", i))}, MaxTokens: openai.Int(6)}); err != nil {
			t.Fatal(err)
		}
	}
	var list struct {
		Data []gateway.StoredReceipt `json:"data"`
	}
	getJSON(t, in.gw.URL()+"/v1/receipts", &list)
	epochs := map[uint64]bool{}
	for _, r := range list.Data {
		epochs[r.Epoch] = true
	}
	c := in.nw.Client(0)
	aud, err := validator.NewAuditor(c, []string{filepath.Join(in.dir, "tiny.gguf")})
	if err != nil {
		t.Fatal(err)
	}
	defer aud.Close()
	waitSeed := func(e uint64) {
		poll.Until(t, 60*time.Second, fmt.Sprintf("epoch %d's seed and a commitment", e), func() (bool, string) {
			var ep api.EpochView
			if err := c.Query(ctx, fmt.Sprintf("/epoch/%d", e), 0, &ep); err != nil {
				return false, err.Error()
			}
			return len(ep.Seed) > 0 && ep.Commitments > 0, fmt.Sprintf("seed %x, %d commitments", ep.Seed, ep.Commitments)
		})
	}
	var first *validator.Finding
	for e := range epochs {
		waitSeed(e)
		fs, err := aud.AuditEpoch(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) == 0 {
			t.Fatalf("epoch %d: nothing audited", e)
		}
		for i := range fs {
			if !fs[i].OK {
				t.Fatalf("honest work failed the audit: %+v", fs[i])
			}
			if first == nil {
				first = &fs[i]
			}
		}
	}
	// Alter the first audited receipt's transcript at its provider, then audit again.
	var prov = in.providers[0]
	if prov.Address().String() != first.Provider {
		prov = in.providers[1]
	}
	tr, err := prov.Store().Transcript(first.Epoch, first.Index)
	if err != nil {
		t.Fatal(err)
	}
	tr.Logprobs[0] -= 0.25
	if err := prov.Store().PutTranscript(first.Epoch, first.Index, tr); err != nil {
		t.Fatal(err)
	}
	fs, err := aud.AuditEpoch(ctx, first.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	caught := false
	for _, f := range fs {
		if f.Provider == first.Provider && f.Index == first.Index {
			caught = !f.OK && f.Fault == validator.FaultFabricated && f.Report != nil
		}
	}
	if !caught {
		t.Fatalf("altered transcript not caught: %+v", fs)
	}
	// The (single) validator reports it: the provider is slashed and the
	// client refunded the receipt's amount.
	var before, after api.ProviderView
	if err := c.Query(ctx, "/provider/"+first.Provider, 0, &before); err != nil {
		t.Fatal(err)
	}
	clientAddr := in.gw.Address()
	accBefore, _ := c.Account(ctx, clientAddr)
	n, err := validator.Report(ctx, c.NewSigner(in.nw.Operators[0]), fs)
	if err != nil || n == 0 {
		t.Fatalf("report: %d %v", n, err)
	}
	if err := c.Query(ctx, "/provider/"+first.Provider, 0, &after); err != nil {
		t.Fatal(err)
	}
	want := before.Bonded - before.Bonded*in.nw.Params.SlashBps["inference/fabricated"]/10000
	if after.Bonded != want || after.Faults != 1 {
		t.Fatalf("provider after the verdict: bond %d (want %d), faults %d", after.Bonded, want, after.Faults)
	}
	var amount uint64
	for _, r := range list.Data {
		if r.Provider == first.Provider && r.Epoch == first.Epoch && r.Index == first.Index {
			amount = r.Amount
		}
	}
	accAfter, _ := c.Account(ctx, clientAddr)
	if accAfter.Balance != accBefore.Balance+amount || amount == 0 {
		t.Fatalf("client balance %d -> %d, refund of %d expected", accBefore.Balance, accAfter.Balance, amount)
	}
}
