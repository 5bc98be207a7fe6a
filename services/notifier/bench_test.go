package notifier_test

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkActivationTo10000Sessions measures, on a real pair, the time from
// an activation event entering the active node's stream until all 10,000
// sessions (on 100 connections, as terminal servers hold them) have switched
// and the notifier has counted every acknowledgement (SPEC §10 target: p95
// ≤ 100 ms). Each iteration hands the active role to the other node.
func BenchmarkActivationTo10000Sessions(b *testing.B) {
	w := newWorld(b)
	for _, n := range []string{"a", "b"} {
		w.serveReplicator(n, dbConfig)
		w.start(n, nil)
	}
	w.activate("a", 2, false)
	f := w.newFleet(10000, 100, "ts")
	waitFor(b, "every session at epoch 2", func() bool { return f.allAt(2) })
	waitFor(b, "b knows every session", func() bool { return w.nodes["b"].svc.Status().Known == 10000 })
	epoch := uint64(2)
	var took, notified, switched []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		epoch++
		node := []string{"b", "a"}[i%2]
		start := time.Now()
		w.activate(node, epoch, true)
		svc := w.nodes[node].svc
		waitFor(b, "notified", func() bool { st := svc.Status(); return st.Epoch == epoch })
		notified = append(notified, time.Since(start))
		waitFor(b, "switched", func() bool { return f.allAt(epoch) })
		switched = append(switched, time.Since(start))
		waitFor(b, fmt.Sprintf("epoch %d acknowledged", epoch), func() bool {
			st := svc.Status()
			return st.Epoch == epoch && st.Acknowledged == 10000 && f.allAt(epoch)
		})
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(took)
	slices.Sort(notified)
	slices.Sort(switched)
	b.ReportMetric(float64(notified[len(notified)/2].Microseconds())/1000, "notified-p50-ms")
	b.ReportMetric(float64(switched[len(switched)/2].Microseconds())/1000, "switched-p50-ms")
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
}
