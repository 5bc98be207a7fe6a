package license

// Metrics (SPEC §9): tandem_input_rejected_total{service="license",kind}
// counts refused input; the license gauges are evaluated at scrape time
// (the time of the question), like every L5 answer:
// tandem_license_grace_left_seconds (the standby; absent on the master),
// tandem_license_valid{feature} (1 when licensed here now, else 0) and
// tandem_license_licenses (licenses held).

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	graceLeftDesc = prometheus.NewDesc("tandem_license_grace_left_seconds",
		"How long the standby's licenses stay valid without contact with the master.", nil, nil)
	validDesc = prometheus.NewDesc("tandem_license_valid",
		"1 when the feature is licensed on this node now, else 0.", []string{"feature"}, nil)
	licensesDesc = prometheus.NewDesc("tandem_license_licenses", "Licenses held on this node.", nil, nil)
)

// collector reads the service's decision at scrape time.
type collector struct{ s *Service }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- graceLeftDesc
	ch <- validDesc
	ch <- licensesDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	if c.s.snap.Load() == nil {
		return
	}
	st := c.s.current()
	if !st.Master {
		ch <- prometheus.MustNewConstMetric(graceLeftDesc, prometheus.GaugeValue, st.Left.Seconds())
	}
	ch <- prometheus.MustNewConstMetric(licensesDesc, prometheus.GaugeValue, float64(len(st.Licenses)))
	var features []string
	for _, e := range st.Licenses {
		features = append(features, e.Features...)
	}
	slices.Sort(features)
	for _, f := range slices.Compact(features) {
		v := 0.0
		if ok, _, _ := st.Check(f); ok {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(validDesc, prometheus.GaugeValue, v, f)
	}
}

func newRejected() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_input_rejected_total", Help: "Rejected input, by kind.",
		ConstLabels: prometheus.Labels{"service": "license"}}, []string{"kind"})
}

// register adds the service's metrics to reg.
func (s *Service) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{s.rejected, collector{s}} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
