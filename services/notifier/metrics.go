package notifier

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	notifications prometheus.Counter
	reannounced   prometheus.Counter
	acks          prometheus.Counter
	rejected      *prometheus.CounterVec
	inputRejected *prometheus.CounterVec // SPEC §9's name, shared by every service
	stale         prometheus.Counter
	known         prometheus.Gauge
	acked         prometheus.Gauge
	epoch         prometheus.Gauge
	pushClients   prometheus.Gauge
	pushRefused   *prometheus.CounterVec
	configReads   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		notifications: prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_notifier_notifications_total", Help: "Notifications this node published for a new epoch."}),
		reannounced:   prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_notifier_reannouncements_total", Help: "Periodic re-announcements of the current notification (N7)."}),
		acks:          prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_notifier_acks_total", Help: "Valid session acknowledgements received."}),
		rejected:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_notifier_rejected_total", Help: "Input refused, by kind."}, []string{"kind"}),
		inputRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_input_rejected_total", Help: "Rejected input, by kind.", ConstLabels: prometheus.Labels{"service": "notifier"}}, []string{"kind"}),
		stale:         prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_notifier_stale_activations_total", Help: "Activations not newer than the current epoch, ignored."}),
		known:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_notifier_sessions_known", Help: "Sessions this node has heard from."}),
		acked:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_notifier_sessions_acknowledged", Help: "Known sessions at the current epoch."}),
		epoch:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_notifier_epoch", Help: "Epoch of the current notification."}),
		pushClients:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "tandem_notifier_push_clients", Help: "Server-Sent Events clients connected."}),
		pushRefused:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_notifier_push_refused_total", Help: "Push endpoint requests refused, by reason."}, []string{"reason"}),
		configReads:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_notifier_config_reads_total", Help: "Reads of the pair configuration through the replicator, by result."}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.notifications, m.reannounced, m.acks, m.rejected, m.inputRejected, m.stale, m.known, m.acked, m.epoch, m.pushClients, m.pushRefused, m.configReads} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
