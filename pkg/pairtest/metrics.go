package pairtest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricSum is the sum of the samples of the counter or gauge name in g
// (all label values), for tests that check what a service counted.
func MetricSum(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}
