package api

import (
	"reflect"
	"testing"
)

func TestDifferingBuckets(t *testing.T) {
	items := ReplTableSum{Table: "items", Rows: 3, Sum: "s1", Buckets: []uint64{1, 2, 3}}
	for _, c := range []struct {
		name string
		a, b []ReplTableSum
		want map[string][]int
	}{
		{"equal", []ReplTableSum{items}, []ReplTableSum{items}, map[string][]int{}},
		{"both empty", nil, nil, map[string][]int{}},
		{"one bucket differs", []ReplTableSum{items},
			[]ReplTableSum{{Table: "items", Sum: "s2", Buckets: []uint64{1, 9, 3}}}, map[string][]int{"items": {1}}},
		{"fewer buckets on b", []ReplTableSum{items},
			[]ReplTableSum{{Table: "items", Sum: "s2", Buckets: []uint64{1}}}, map[string][]int{"items": {1, 2}}},
		{"sums differ, buckets agree", []ReplTableSum{items},
			[]ReplTableSum{{Table: "items", Sum: "s2", Buckets: []uint64{1, 2, 3}}}, map[string][]int{"items": {}}},
		{"only on a", []ReplTableSum{items}, nil, map[string][]int{"items": {0, 1, 2}}},
		{"only on b", nil, []ReplTableSum{items}, map[string][]int{"items": {0, 1, 2}}},
	} {
		if got := DifferingBuckets(c.a, c.b); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDifferingRows(t *testing.T) {
	a := ReplVerifyReply{Node: "a", Rows: []ReplRowSum{{PK: "1", Hash: "h1"}, {PK: "2", Hash: "h2"}, {PK: "4", Hash: "h4"}}}
	b := ReplVerifyReply{Node: "b", Rows: []ReplRowSum{{PK: "1", Hash: "h1"}, {PK: "2", Hash: "x"}, {PK: "3", Hash: "h3"}}}
	want := []ReplRowDiff{{Table: "t", PK: "2"}, {Table: "t", PK: "3", On: "b"}, {Table: "t", PK: "4", On: "a"}}
	if got := DifferingRows("t", a, b); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := DifferingRows("t", a, a); len(got) != 0 {
		t.Errorf("a node against itself: %+v", got)
	}
}
