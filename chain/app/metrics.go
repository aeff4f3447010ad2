package app

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the state machine's Prometheus metrics.
type Metrics struct {
	txs           *prometheus.CounterVec
	checkRejected *prometheus.CounterVec
	checkSeconds  prometheus.Histogram
	blockSeconds  prometheus.Histogram
	height        prometheus.Gauge
	// beacon (beacon.go)
	beaconRejected   *prometheus.CounterVec
	seedContributors prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		txs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agora", Subsystem: "app", Name: "txs_total",
			Help: "Txs executed in finalized blocks, by result code.",
		}, []string{"code"}),
		checkRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agora", Subsystem: "app", Name: "checktx_rejected_total",
			Help: "Txs refused by CheckTx, by result code.",
		}, []string{"code"}),
		checkSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "agora", Subsystem: "app", Name: "checktx_seconds",
			Help: "CheckTx duration.", Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
		}),
		blockSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "agora", Subsystem: "app", Name: "finalize_block_seconds",
			Help: "FinalizeBlock duration.", Buckets: prometheus.ExponentialBuckets(1e-4, 3, 10),
		}),
		height: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "agora", Subsystem: "app", Name: "height", Help: "Last finalized height.",
		}),
		beaconRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agora", Subsystem: "app", Name: "beacon_rejected_total",
			Help: "Vote extensions and block proposals rejected over their epoch-beacon content.",
		}, []string{"what"}),
		seedContributors: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "agora", Subsystem: "app", Name: "epoch_seed_contributors",
			Help: "Validators whose VRF output went into the last epoch seed drawn (0: a block-hash seed).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.txs, m.checkRejected, m.checkSeconds, m.blockSeconds, m.height, m.beaconRejected, m.seedContributors)
	}
	return m
}
