package e2e

import (
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"testing"
	"time"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/explorer"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/testutil/poll"
)

// TestCheatersCaught: on a two-validator network whose validators both run
// the audit worker, a provider that serves a cheaper model than the one it
// registered, one that fabricates half of its answers and one that stops
// serving its openings are each caught, confirmed by the second validator,
// slashed, and their clients refunded for fabricated answers; an honest
// provider serving every epoch beside them is never slashed and builds
// reputation.
func TestCheatersCaught(t *testing.T) {
	params := types.DefaultParams()
	params.EpochLength, params.CommitWindow, params.OpeningWindow = 10, 4, 40
	params.AuditCeilingBps = 5000 // new providers: half their receipts audited
	a := startAuditNet(t, params, 5)
	nw, c, ctx := a.nw, a.c, a.ctx
	honest := a.provider(0, a.backend(a.real))
	substitute := a.provider(1, a.cheater("tiny-substitute", func(int64) bool { return true }))
	fabricator := a.provider(2, a.cheater("tiny-fabricator", func(n int64) bool { return n%2 == 0 }))
	refuser := a.provider(3, a.cheater("tiny-refuser", func(int64) bool { return false }))
	stopped := false
	prov := a.view
	chat := func(model string, i int) { a.chat(model, fmt.Sprintf("question %d for %s", i, model)) }
	bondBefore := map[string]uint64{}
	for _, p := range []*provider.Provider{honest, substitute, fabricator, refuser} {
		bondBefore[p.Address().String()] = prov(p).Bonded
	}

	// Traffic for a few epochs, a round each; the refuser stops (and so
	// serves no openings) once it has committed its first epoch.
	var refuserEpoch uint64
	deadline := time.Now().Add(150 * time.Second)
	a.everyEpoch(150*time.Second, "the cheaters' faults", func(round int) (bool, string) {
		for i := 0; i < 4; i++ {
			chat("tiny", round*4+i)
			if prov(fabricator).Faults == 0 {
				chat("tiny-fabricator", round*4+i)
			}
			if round == 0 {
				chat("tiny-substitute", i)
				chat("tiny-refuser", i)
			}
		}
		if !stopped {
			for _, r := range a.receipts() {
				if r.Provider == refuser.Address().String() {
					refuserEpoch = r.Epoch
				}
			}
			poll.Until(t, time.Until(deadline), fmt.Sprintf("the refuser's commitment of epoch %d", refuserEpoch), func() (bool, string) {
				var cm api.CommitmentView
				err := c.Query(ctx, fmt.Sprintf("/commitment/%d/%s", refuserEpoch, refuser.Address()), 0, &cm)
				return err == nil, fmt.Sprint(err)
			})
			refuser.Stop()
			stopped = true
		}
		if k := faultKinds(t, nw.Configs[0].API.Laddr); k[substitute.Address().String()]["fabricated_output"] &&
			k[fabricator.Address().String()]["fabricated_output"] && k[refuser.Address().String()]["refused_opening"] {
			return true, ""
		}
		return false, fmt.Sprintf("faults substitute %d, fabricator %d, refuser %d", prov(substitute).Faults, prov(fabricator).Faults, prov(refuser).Faults)
	})

	// The verdicts, as the explorer indexed them: every fabricated-output
	// fault refunded its receipt's exact amount to the client, and both
	// validators voted for each applied fault.
	amount := map[string]uint64{}
	for _, r := range a.receipts() {
		amount[fmt.Sprintf("%s/%d/%d", r.Provider, r.Epoch, r.Index)] = r.Amount
	}
	var verdicts []explorer.Verdict
	poll.Until(t, 20*time.Second, "the explorer to index every applied verdict", func() (bool, string) {
		getJSON(t, "http://"+nw.Configs[0].API.Laddr+"/explorer/api/verdicts?limit=1000", &verdicts)
		applied := 0
		for _, v := range verdicts {
			if v.Applied {
				applied++
			}
		}
		faults := prov(substitute).Faults + prov(fabricator).Faults + prov(refuser).Faults
		return uint64(applied) >= faults, fmt.Sprintf("the explorer indexed %d applied verdicts, the chain counts %d faults", applied, faults)
	})
	kinds := map[string]map[string]bool{}
	for _, v := range verdicts {
		if v.Target == honest.Address().String() {
			t.Fatalf("the honest provider was reported: %+v", v)
		}
		if !v.Applied {
			// The first vote, or a vote on a receipt already faulted (e.g.
			// by the gateway's omission report): it changed nothing.
			if v.Slashed != 0 || v.Refund != 0 || v.Reward != 0 {
				t.Fatalf("an unapplied verdict moved funds: %+v", v)
			}
			continue
		}
		if v.Kind != "omitted_receipt" && v.Votes != 2 {
			t.Fatalf("a fault applied without the second validator: %+v", v)
		}
		if kinds[v.Target] == nil {
			kinds[v.Target] = map[string]bool{}
		}
		kinds[v.Target][v.Kind] = true
		if v.Kind == "fabricated_output" {
			billed := amount[fmt.Sprintf("%s/%d/%d", v.Provider, v.Epoch, v.Index)]
			if billed == 0 || v.Refund != billed {
				t.Fatalf("fabricated receipt %s/%d/%d: refund %d, the receipt billed %d", v.Provider, v.Epoch, v.Index, v.Refund, billed)
			}
		}
	}
	if !kinds[substitute.Address().String()]["fabricated_output"] || !kinds[fabricator.Address().String()]["fabricated_output"] || !kinds[refuser.Address().String()]["refused_opening"] {
		t.Fatalf("fault kinds: %v", kinds)
	}

	// Each cheater lost exactly the slashes of its applied faults, in order
	// (a stopped provider also fails the gateway's omission challenge).
	// Audits of later epochs may still land: compare until both views agree.
	bps := map[string]uint64{"fabricated_output": params.SlashBps["inference/fabricated"], "refused_opening": params.SlashBps["inference/refused"], "omitted_receipt": params.SlashBps["inference/omitted"]}
	poll.Until(t, 30*time.Second, "the cheaters' bonds to match their applied verdicts", func() (bool, string) {
		getJSON(t, "http://"+nw.Configs[0].API.Laddr+"/explorer/api/verdicts?limit=1000", &verdicts)
		mismatch := ""
		for _, p := range []*provider.Provider{substitute, fabricator, refuser} {
			v := prov(p)
			want, n := bondBefore[v.Address.String()], uint64(0)
			for i := len(verdicts) - 1; i >= 0; i-- { // oldest first
				if verdicts[i].Applied && verdicts[i].Target == v.Address.String() {
					want -= want * bps[verdicts[i].Kind] / 10000
					n++
				}
			}
			if v.Bonded != want || v.Faults != n || v.ReputationBps != 0 {
				mismatch = fmt.Sprintf("provider %s: bond %d, want %d after %d faults (chain counts %d); reputation %d", v.Address, v.Bonded, want, n, v.Faults, v.ReputationBps)
			}
		}
		return mismatch == "", mismatch
	})

	// The honest provider: never slashed; its reputation grows as its epochs settle.
	poll.Until(t, 60*time.Second, "the honest provider's reputation to grow", func() (bool, string) {
		v := prov(honest)
		if v.Faults != 0 || v.Bonded != bondBefore[v.Address.String()] {
			t.Fatalf("honest provider slashed: %+v", v)
		}
		return v.ReputationBps > 0, fmt.Sprintf("%+v", v)
	})
}

// faultKinds maps each provider to the kinds of its applied faults, as the
// explorer on api indexed them.
func faultKinds(t *testing.T, api string) map[string]map[string]bool {
	var vs []explorer.Verdict
	getJSON(t, "http://"+api+"/explorer/api/verdicts?limit=1000", &vs)
	out := map[string]map[string]bool{}
	for _, v := range vs {
		if !v.Applied {
			continue
		}
		if out[v.Target] == nil {
			out[v.Target] = map[string]bool{}
		}
		out[v.Target][v.Kind] = true
	}
	return out
}
