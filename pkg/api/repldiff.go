package api

import "sort"

// ReplRowDiff is one row that differs between the nodes (R7).
type ReplRowDiff struct {
	Table string `json:"table"`
	PK    string `json:"pk"`
	// On names the node that has the row when only one has it; empty
	// when both have it with different contents.
	On string `json:"only_on,omitempty"`
}

// DifferingBuckets compares two nodes' table checksums (the first step of
// repl verify, R7) and lists, per table, the buckets whose sums differ:
// every bucket of a table that only one node has; an empty list for a
// table whose sums differ while no bucket does. Tables with equal sums are
// left out, so an empty map means the nodes agree.
func DifferingBuckets(a, b []ReplTableSum) map[string][]int {
	out := map[string][]int{}
	byName := map[string]ReplTableSum{}
	for _, t := range b {
		byName[t.Table] = t
	}
	for _, ta := range a {
		tb, ok := byName[ta.Table]
		delete(byName, ta.Table)
		if ok && ta.Sum == tb.Sum {
			continue
		}
		out[ta.Table] = []int{}
		for i := range ta.Buckets {
			if !ok || i >= len(tb.Buckets) || ta.Buckets[i] != tb.Buckets[i] {
				out[ta.Table] = append(out[ta.Table], i)
			}
		}
	}
	for name, t := range byName {
		for i := range t.Buckets {
			out[name] = append(out[name], i)
		}
	}
	return out
}

// DifferingRows compares two nodes' row hashes of table (the second step
// of repl verify, for the differing buckets) and names the rows whose
// hashes differ or that only one node has, by key.
func DifferingRows(table string, a, b ReplVerifyReply) []ReplRowDiff {
	ha := map[string]string{}
	for _, r := range a.Rows {
		ha[r.PK] = r.Hash
	}
	var out []ReplRowDiff
	for _, r := range b.Rows {
		h, ok := ha[r.PK]
		delete(ha, r.PK)
		switch {
		case !ok:
			out = append(out, ReplRowDiff{Table: table, PK: r.PK, On: b.Node})
		case h != r.Hash:
			out = append(out, ReplRowDiff{Table: table, PK: r.PK})
		}
	}
	for pk := range ha {
		out = append(out, ReplRowDiff{Table: table, PK: pk, On: a.Node})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PK < out[j].PK })
	return out
}
