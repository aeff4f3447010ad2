package node

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/explorer"
)

// Status is the answer of GET /v1/status.
type Status struct {
	ChainID         string         `json:"chain_id"`
	Moniker         string         `json:"moniker"`
	NodeID          string         `json:"node_id"`
	Height          int64          `json:"height"`
	AppHash         types.HexBytes `json:"app_hash"`
	LatestBlockTime string         `json:"latest_block_time,omitempty"`
	CatchingUp      bool           `json:"catching_up"`
	ValidatorAddr   types.HexBytes `json:"validator_address"`
	Peers           int            `json:"peers"`
}

// apiHandler serves the JSON query API:
//
//	GET /v1/status
//	GET /v1/<query path>?height=H   (see app.Query for the paths)
//	GET /metrics, GET /healthz
func (n *Node) apiHandler() http.Handler {
	mux := http.NewServeMux()
	gatherers := prometheus.Gatherers{n.reg}
	if n.cfg.Instrumentation.CometBFTMetrics {
		gatherers = append(gatherers, prometheus.DefaultGatherer)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{}))
	mux.Handle("GET /healthz", n.health)
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, n.Status())
	})
	mux.HandleFunc("GET /v1/", func(w http.ResponseWriter, r *http.Request) {
		var height int64
		if h := r.URL.Query().Get("height"); h != "" {
			v, err := strconv.ParseInt(h, 10, 64)
			if err != nil || v < 0 {
				writeError(w, http.StatusBadRequest, "height must be a non-negative integer")
				return
			}
			height = v
		}
		path := strings.TrimPrefix(r.URL.Path, "/v1")
		v, at, err := n.app.QueryJSON(path, height)
		if err != nil {
			status := http.StatusBadRequest
			if types.CodeOf(err) == types.CodeNotFound {
				status = http.StatusNotFound
			}
			writeError(w, status, err.Error())
			return
		}
		w.Header().Set("X-Agora-Height", strconv.FormatInt(at, 10))
		writeJSON(w, http.StatusOK, v)
	})
	if n.explorer != nil {
		mux.Handle(explorer.Prefix, explorer.NewServer(n.explorer, n.app).Handler())
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, explorer.Prefix, http.StatusFound)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "unknown route "+r.Method+" "+r.URL.Path+"; try GET /v1/status")
	})
	return mux
}

// Status reports the node's view of the chain.
func (n *Node) Status() Status {
	bs := n.cmt.BlockStore()
	s := Status{
		ChainID: n.app.ChainID(), Moniker: n.cfg.Moniker, NodeID: string(n.cmt.NodeInfo().ID()),
		Height: bs.Height(), Peers: n.cmt.Switch().Peers().Size(),
	}
	if pk, err := n.cmt.PrivValidator().GetPubKey(); err == nil {
		s.ValidatorAddr = types.HexBytes(pk.Address())
	}
	if meta := bs.LoadBlockMeta(s.Height); meta != nil {
		s.LatestBlockTime = meta.Header.Time.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	if snap, err := n.app.Snapshot(0); err == nil {
		s.AppHash = snap.Hash()
	}
	s.CatchingUp = n.cmt.ConsensusReactor().WaitSync()
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "code": status}})
}
