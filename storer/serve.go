package storer

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/internal/replicastore"
	pdata "github.com/agoranet/agora/protocol/data"
	pstorage "github.com/agoranet/agora/protocol/storage"
)

func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...)})
}

// handleUpload takes a deal's blob from its client, seals the replica and
// accepts the deal on chain.
func (s *Storer) handleUpload(w http.ResponseWriter, r *http.Request) {
	deal, err := strconv.ParseUint(r.PathValue("deal"), 10, 64)
	if err != nil {
		httpError(w, http.StatusBadRequest, "deal id: %v", err)
		return
	}
	up, err := pstorage.ParseUpload(r.Header.Get(pstorage.UploadHeader))
	if err != nil {
		httpError(w, http.StatusUnauthorized, "%v", err)
		return
	}
	if up.Deal != deal {
		httpError(w, http.StatusUnauthorized, "%s is for deal %d, not %d", pstorage.UploadHeader, up.Deal, deal)
		return
	}
	d, err := s.chain.StorageDeal(r.Context(), deal)
	if err != nil {
		if client.IsNotFound(err) {
			httpError(w, http.StatusNotFound, "deal %d does not exist", deal)
			return
		}
		httpError(w, http.StatusBadGateway, "read deal %d: %v", deal, err)
		return
	}
	if up.Client.String() != d.Client.String() {
		httpError(w, http.StatusForbidden, "deal %d's client is %s, not %s", deal, d.Client, up.Client)
		return
	}
	if err := up.Verify(s.chainID, d.BlobID); err != nil {
		httpError(w, http.StatusUnauthorized, "%v", err)
		return
	}
	if why := s.unfit(r.Context(), d); why != "" {
		httpError(w, http.StatusConflict, "deal %d not taken: %s", deal, why)
		return
	}
	info, err := s.store.Seal([32]byte(d.BlobID), d.Size, io.LimitReader(r.Body, int64(d.Size)+1), s.addr, nil)
	if err != nil {
		var mm *replicastore.MismatchError
		if errors.As(err, &mm) {
			httpError(w, http.StatusBadRequest, "the bytes hash to blob %x, deal %d is for %x", mm.Got[:], deal, []byte(d.BlobID))
			return
		}
		httpError(w, http.StatusBadRequest, "seal deal %d's blob: %v", deal, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	res, err := s.signer.Send(ctx, &types.MsgAcceptDeal{DealId: deal, ReplicaRoot: info.ReplicaRoot[:]})
	if err != nil {
		httpError(w, http.StatusConflict, "accept deal %d: %v", deal, err)
		return
	}
	s.metrics.accepted.Inc()
	s.log.Info("storage deal accepted", "deal", deal, "size", d.Size, "replica_root", fmt.Sprintf("%x", info.ReplicaRoot), "height", res.Height,
		"first_epoch", res.Events["first_epoch"])
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(pstorage.DealStatus{Deal: deal, Phase: "accepted", ReplicaRoot: fmt.Sprintf("%x", info.ReplicaRoot), Size: d.Size})
}

// unfit says why the storer will not take deal d now, or "".
func (s *Storer) unfit(ctx context.Context, d api.StorageDealView) string {
	switch {
	case d.Status != "open":
		return "it is " + d.Status
	case len(d.NamedProvider) != 0 && d.NamedProvider.String() != s.addr.String():
		return "it names another provider, " + d.NamedProvider.String()
	case d.Collateral > s.cfg.MaxCollateral:
		return fmt.Sprintf("collateral %d above this provider's maximum %d", d.Collateral, s.cfg.MaxCollateral)
	case d.PricePerEpoch < s.cfg.MinPrice:
		return fmt.Sprintf("price %d per epoch below this provider's minimum %d", d.PricePerEpoch, s.cfg.MinPrice)
	}
	for _, x := range d.Dropped {
		if x.String() == s.addr.String() {
			return "this provider was dropped from it"
		}
	}
	held, err := s.held(ctx)
	if err != nil {
		return "cannot read the deals held: " + err.Error()
	}
	if held+d.Size > s.cfg.MaxTotal {
		return fmt.Sprintf("%d bytes held + %d would exceed this provider's %d", held, d.Size, s.cfg.MaxTotal)
	}
	return ""
}

// held is the size of the active deals this storer holds.
func (s *Storer) held(ctx context.Context) (uint64, error) {
	deals, err := s.chain.StorageDealsByProvider(ctx, s.addr)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, d := range deals {
		if d.Status == "active" && d.Provider.String() == s.addr.String() {
			n += d.Size
		}
	}
	return n, nil
}

// handleDeal answers the storer's view of a deal it holds.
func (s *Storer) handleDeal(w http.ResponseWriter, r *http.Request) {
	deal, err := strconv.ParseUint(r.PathValue("deal"), 10, 64)
	if err != nil {
		httpError(w, http.StatusBadRequest, "deal id: %v", err)
		return
	}
	d, err := s.chain.StorageDeal(r.Context(), deal)
	if err != nil {
		if client.IsNotFound(err) {
			httpError(w, http.StatusNotFound, "deal %d does not exist", deal)
			return
		}
		httpError(w, http.StatusBadGateway, "read deal %d: %v", deal, err)
		return
	}
	info, err := s.store.Info([32]byte(d.BlobID))
	if errors.Is(err, replicastore.ErrNotFound) {
		httpError(w, http.StatusNotFound, "no replica of deal %d's blob here", deal)
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	st := pstorage.DealStatus{Deal: deal, Phase: "sealed", ReplicaRoot: fmt.Sprintf("%x", info.ReplicaRoot), Size: info.Size}
	switch {
	case d.Provider.String() == s.addr.String() && d.Status == "active":
		st.Phase = "accepted"
	case d.Status == "done" && d.Provider.String() == s.addr.String():
		st.Phase = "done"
	default:
		for _, x := range d.Dropped {
			if x.String() == s.addr.String() {
				st.Phase = "dropped"
			}
		}
	}
	s.mu.Lock()
	st.LastEpoch = s.proved[deal]
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(st)
}

// handleGet gives a deal's client its bytes back, decoded from the replica
// this storer holds: only to the client (protocol/data's access header,
// signed with the client's key on chain), only while this storer holds
// the deal (active, or done with it).
func (s *Storer) handleGet(w http.ResponseWriter, r *http.Request) {
	deal, err := strconv.ParseUint(r.PathValue("deal"), 10, 64)
	if err != nil {
		httpError(w, http.StatusBadRequest, "deal id: %v", err)
		return
	}
	a, err := pdata.ParseAuth(r.Header.Get(pdata.AuthHeader))
	if err != nil {
		httpError(w, http.StatusUnauthorized, "%v", err)
		return
	}
	d, err := s.chain.StorageDeal(r.Context(), deal)
	if err != nil {
		if client.IsNotFound(err) {
			httpError(w, http.StatusNotFound, "deal %d does not exist", deal)
			return
		}
		httpError(w, http.StatusBadGateway, "read deal %d: %v", deal, err)
		return
	}
	acc, err := s.chain.Account(r.Context(), a.Addr)
	if err != nil && !client.IsNotFound(err) {
		httpError(w, http.StatusBadGateway, "read account %s: %v", a.Addr, err)
		return
	}
	if err := a.Verify(ed25519.PublicKey(acc.PubKey), s.chainID, r.Method, r.URL.Path, time.Now()); err != nil {
		httpError(w, http.StatusUnauthorized, "%v", err)
		return
	}
	if a.Addr.String() != d.Client.String() {
		httpError(w, http.StatusForbidden, "deal %d's bytes go to its client %s, not %s", deal, d.Client, a.Addr)
		return
	}
	if d.Provider.String() != s.addr.String() || (d.Status != "active" && d.Status != "done") {
		httpError(w, http.StatusNotFound, "deal %d is not held here (%s, provider %s)", deal, d.Status, d.Provider)
		return
	}
	data, err := s.store.Open([32]byte(d.BlobID))
	if errors.Is(err, replicastore.ErrNotFound) {
		httpError(w, http.StatusNotFound, "no replica of deal %d's blob here", deal)
		return
	}
	if err != nil {
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	defer data.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, data)
}
