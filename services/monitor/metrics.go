package monitor

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-ha/tandem/services/monitor/internal/failover"
)

type metrics struct {
	state         *prometheus.GaugeVec
	epoch         prometheus.Gauge
	peerAge       prometheus.Gauge
	maintenance   prometheus.Gauge
	failovers     prometheus.Counter
	activations   *prometheus.CounterVec
	phase         *prometheus.HistogramVec
	hookSeconds   *prometheus.HistogramVec
	heartbeatsIn  prometheus.Counter
	heartbeatsOut prometheus.Counter
	rejected      *prometheus.CounterVec
	inputsDropped prometheus.Counter
	stalls        prometheus.Counter
	linkDowns     prometheus.Counter
	// persistFailures counts failed writes of epoch.json.
	persistFailures prometheus.Counter
	// Health checks (F15).
	healthy      prometheus.Gauge
	critical     prometheus.Gauge
	checkHealthy *prometheus.GaugeVec
	checkRuns    *prometheus.CounterVec
	checkSeconds *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	buckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &metrics{
		state:       prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tandem_monitor_state", Help: "1 for the node's current state."}, []string{"state"}),
		epoch:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_monitor_epoch", Help: "The node's epoch."}),
		peerAge:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_monitor_peer_heartbeat_age_seconds", Help: "Age of the last heartbeat heard from the peer."}),
		maintenance: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_monitor_maintenance", Help: "1 while maintenance mode is on."}),
		failovers:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_monitor_failovers_total", Help: "Activations after an outage of the peer."}),
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_monitor_transitions_total", Help: "State transitions, by event type."}, []string{"type"}),
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tandem_monitor_failover_phase_seconds",
			Help:    "Duration of each failover phase: detection (last heartbeat or link loss to decision) and activation (decision to epoch persisted and heartbeat sent).",
			Buckets: buckets}, []string{"phase"}),
		hookSeconds:     prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tandem_monitor_hook_seconds", Help: "Hook run time (the hooks phase of a failover).", Buckets: buckets}, []string{"hook"}),
		heartbeatsIn:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_monitor_heartbeats_received_total", Help: "Valid heartbeats received from the peer."}),
		heartbeatsOut:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_monitor_heartbeats_sent_total", Help: "Heartbeats sent."}),
		rejected:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_input_rejected_total", Help: "Rejected input, by kind.", ConstLabels: prometheus.Labels{"service": "monitor"}}, []string{"kind"}),
		inputsDropped:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_monitor_inputs_dropped_total", Help: "Inputs dropped because the queue was full."}),
		stalls:          prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_monitor_stalls_total", Help: "Ticks that came late (F12)."}),
		linkDowns:       prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_monitor_link_down_total", Help: "Times the link to the peer went down."}),
		persistFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_monitor_epoch_persist_failures_total", Help: "Failed writes of the epoch file."}),
		healthy:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_monitor_healthy", Help: "1 while every health check of this node passes (F15)."}),
		critical:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_monitor_health_critical", Help: "1 while both nodes are unhealthy (F15)."}),
		checkHealthy:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tandem_monitor_check_healthy", Help: "1 while the check is healthy (after rise successes), 0 after fall failures."}, []string{"check"}),
		checkRuns:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_monitor_check_runs_total", Help: "Runs of each health check, by result (ok, fail)."}, []string{"check", "result"}),
		checkSeconds:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tandem_monitor_check_seconds", Help: "Run time of each health check.", Buckets: buckets}, []string{"check"}),
	}
	for _, c := range []prometheus.Collector{m.state, m.epoch, m.peerAge, m.maintenance, m.failovers, m.activations,
		m.phase, m.hookSeconds, m.heartbeatsIn, m.heartbeatsOut, m.rejected, m.inputsDropped, m.stalls, m.linkDowns, m.persistFailures,
		m.healthy, m.critical, m.checkHealthy, m.checkRuns, m.checkSeconds} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(st failover.Status, lastHeard, now time.Time) {
	for _, s := range []failover.State{failover.Starting, failover.Passive, failover.Active} {
		v := 0.0
		if st.State == s {
			v = 1
		}
		m.state.WithLabelValues(string(s)).Set(v)
	}
	m.epoch.Set(float64(st.Epoch))
	if !lastHeard.IsZero() {
		m.peerAge.Set(now.Sub(lastHeard).Seconds())
	}
	mv := 0.0
	if st.Maintenance {
		mv = 1
	}
	m.maintenance.Set(mv)
}

// observeTransition records a transition and, for an outage activation,
// the detection phase: from the link's loss (or the last heartbeat) to the
// decision, which the machine took just before its Ready was carried out
// (decided). The activation phase is measured in carryOut.
func (s *Service) observeTransition(e failover.Event, decided time.Time) {
	s.met.activations.WithLabelValues(e.Type).Inc()
	if !e.Outage() {
		return
	}
	s.met.failovers.Inc()
	from := s.lastHeard
	if !s.linkDown.IsZero() {
		from = s.linkDown
	}
	if !from.IsZero() {
		s.met.phase.WithLabelValues("detection").Observe(decided.Sub(from).Seconds())
	}
}
