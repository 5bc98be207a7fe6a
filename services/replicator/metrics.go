package replicator

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reject"
)

type metrics struct {
	lag              prometheus.Histogram
	rowsApplied      prometheus.Counter
	rowsShipped      prometheus.Counter
	groupsApplied    prometheus.Counter
	groupsShipped    prometheus.Counter
	conflicts        prometheus.Counter
	paused           prometheus.Gauge
	snapshotProgress prometheus.Gauge
	snapshotSeconds  prometheus.Histogram
	rejected         *prometheus.CounterVec
	failoverFailures prometheus.Counter
	refused          prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tandem_repl_lag_seconds",
			Help:    "Replication lag of each applied group: source commit of its last change to applied here (both nodes' clocks).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}),
		rowsApplied:      prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_repl_rows_applied_total", Help: "Row changes of the peer applied here."}),
		rowsShipped:      prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_repl_rows_shipped_total", Help: "Row changes made here and shipped to the stream."}),
		groupsApplied:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_repl_groups_applied_total", Help: "Groups of source transactions applied here."}),
		groupsShipped:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_repl_groups_shipped_total", Help: "Groups of source transactions shipped."}),
		conflicts:        prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_repl_conflicts_total", Help: "Concurrent changes resolved by master-wins (R3)."}),
		paused:           prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_repl_paused", Help: "1 while replication is paused on this node."}),
		snapshotProgress: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_repl_snapshot_progress_ratio", Help: "Progress of the running snapshot transfer (0–1)."}),
		snapshotSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tandem_repl_snapshot_seconds", Help: "Duration of each resync (request to restored).",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 12)}),
		failoverFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_repl_failover_write_failures_total",
			Help: "Attempts to write the failover status (R8) that failed; each is retried."}),
		refused: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_repl_tables_refused",
			Help: "Application tables refused alone (no primary key, a schema change that cannot be replicated, a schema incompatible with the peer's); the others replicate."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_input_rejected_total", Help: "Rejected input, by kind.",
			ConstLabels: prometheus.Labels{"service": "replicator"}}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.lag, m.rowsApplied, m.rowsShipped, m.groupsApplied, m.groupsShipped,
		m.conflicts, m.paused, m.snapshotProgress, m.snapshotSeconds, m.rejected, m.failoverFailures, m.refused} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// reporter reports what the replicator sees to the node: events into its
// sink (stamped with the newest activation epoch seen), bad input (counted,
// logged, at most reject.PerSecond events a second) and refused tables.
// Every part holds it; it is safe for concurrent use.
type reporter struct {
	pair, node string
	events     event.Sink
	log        zerolog.Logger
	met        *metrics
	rejects    reject.Limiter
	epoch      atomic.Uint64 // the newest activation epoch seen (failover.go)
}

// reject counts, logs and reports bad input (SPEC §9).
func (r *reporter) reject(kind, subj string, err error) {
	r.met.rejected.WithLabelValues(kind).Inc()
	if !r.rejects.Log(r.log, time.Now(), kind, subj, err) {
		return
	}
	r.emit(event.InputRejected, event.Rejected{Why: event.Because(err.Error()), Kind: kind, Subject: subj})
}

// refused logs and reports the tables newly refused (R11: the others
// replicate) and sets the gauge to the tables refused now (all).
func (r *reporter) refused(newly, all map[string]string) {
	for tbl, why := range newly {
		r.log.Error().Str("table", tbl).Str("reason", why).Msg("table refused: not replicated")
		r.emit(event.ReplRefused, event.TableRefused{Why: event.Because("R11: " + why), Table: tbl})
	}
	r.met.refused.Set(float64(len(all)))
}

// emit publishes an event of this node's replicator.
func (r *reporter) emit(typ string, data any) {
	env, err := event.New(r.pair, r.node, "replicator", typ, r.epoch.Load(), time.Now(), data)
	if err != nil {
		r.log.Error().Err(err).Str("type", typ).Msg("cannot build event")
		return
	}
	r.events.Emit(env)
}
