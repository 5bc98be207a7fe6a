package main

import (
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	var s []float64
	for i := 20; i >= 1; i-- {
		s = append(s, float64(i))
	}
	st := summarize(s)
	if st.n != 20 || st.p50 != 10 || st.p95 != 19 || st.max != 20 {
		t.Errorf("nearest rank of 1..20: %+v", st)
	}
	if one := summarize([]float64{7}); one.p50 != 7 || one.p95 != 7 || one.max != 7 {
		t.Errorf("one sample: %+v", one)
	}
}

func TestCells(t *testing.T) {
	r := row{what: "x", unit: seconds, samples: []float64{0.004, 0.006}, target: &target{"p95", 0.005}}
	if got := strings.Join(r.cells(), "|"); got != "x|2|4.0 ms|6.0 ms|6.0 ms|p95 ≤ 5.0 ms|MISSED" {
		t.Errorf("cells: %s", got)
	}
	r = row{what: "m", unit: bytes, samples: []float64{50 << 20}, target: &target{"max", 100 << 20}}
	if got := strings.Join(r.cells(), "|"); got != "m|1|50.0 MiB|50.0 MiB|50.0 MiB|max ≤ 100.0 MiB|ok" {
		t.Errorf("cells: %s", got)
	}
	if got := (row{what: "f", failure: "boom"}).cells()[6]; got != "FAILED: boom" {
		t.Errorf("failure verdict: %s", got)
	}
	if got := seconds.format(0.0005); got != "500 µs" {
		t.Errorf("format: %s", got)
	}
}

func TestSelect(t *testing.T) {
	if b, err := selectBenchmarks("idle, crash-failover"); err != nil || len(b) != 2 || b[0].name != "idle" {
		t.Errorf("select: %v %v", b, err)
	}
	if _, err := selectBenchmarks("nope"); err == nil {
		t.Error("an unknown benchmark was accepted")
	}
}
