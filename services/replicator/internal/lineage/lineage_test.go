package lineage

import "testing"

func TestPlanShip(t *testing.T) {
	own := Own{DB: "x", DBStart: 5, LogHigh: 9}
	for _, c := range []struct {
		name              string
		master, following bool
		s                 Shipped
		want              ShipPlan
	}{
		{"master, first start", true, false, Shipped{}, ShipPlan{Kind: ShipGenesis, Own: OwnNew, Reason: ReasonCreated, At: 5}},
		{"master, same", true, false, Shipped{DB: "x", To: 7, Have: true}, ShipPlan{Kind: ShipGroup, Own: OwnSame}},
		{"master, caught up", true, false, Shipped{DB: "x", To: 9, Have: true}, ShipPlan{Kind: ShipGroup, Own: OwnSame}},
		{"master, replaced", true, false, Shipped{DB: "old", To: 70, Have: true}, ShipPlan{Kind: ShipGenesis, Own: OwnReplaced, Reason: ReasonNewID, At: 5}},
		// A restored backup: the genesis of its new id announces the log's
		// end, after which the new id's batches start (NewID), so nothing
		// the backup holds is shipped again under the new id.
		{"master, restored", true, false, Shipped{DB: "x", To: 12, Have: true}, ShipPlan{Kind: ShipRestored, Own: OwnRestored, NewID: true, Reason: ReasonBackup, At: 9}},
		{"standby before its first sync", false, false, Shipped{}, ShipPlan{Kind: ShipNothing, Own: OwnNew}},
		{"standby after its first sync", false, true, Shipped{}, ShipPlan{Kind: ShipGenesis, Own: OwnNew, Reason: ReasonSnapshot, At: 5}},
		{"standby reconciled again", false, true, Shipped{DB: "old", To: 3, Have: true}, ShipPlan{Kind: ShipGenesis, Own: OwnReplaced, Reason: ReasonSnapshot, Purge: true, At: 5}},
		{"standby restored", false, true, Shipped{DB: "x", To: 12, Have: true}, ShipPlan{Kind: ShipRestored, Own: OwnRestored, NewID: true, Reconcile: "this database was restored from a backup", At: 9}},
		{"standby same", false, true, Shipped{DB: "x", To: 9, Have: true}, ShipPlan{Kind: ShipGroup, Own: OwnSame}},
	} {
		if got := PlanShip(c.master, c.following, c.s, own); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestComparePeer(t *testing.T) {
	pos := Position{DB: "m", Log: 4, Stream: 9}
	for _, c := range []struct {
		pos     Position
		have    bool
		db, gen string
		want    PeerLineage
	}{
		{Position{}, false, "m", "", PeerUnknown},
		{Position{Log: 3}, true, "m", "", PeerUnknown},
		{pos, true, "m", "", PeerSame},
		{pos, true, "m2", "", PeerReplaced},
		{pos, true, "m2", ReasonNewID, PeerReplaced},
		{pos, true, "m2", ReasonBackup, PeerRestored},
	} {
		if got := ComparePeer(c.pos, c.have, c.db, c.gen); got != c.want {
			t.Errorf("%+v %v %q %q: %s, want %s", c.pos, c.have, c.db, c.gen, got, c.want)
		}
	}
}

// A group whose apply asks for a reconcile (a schema change only a
// reconcile can follow) makes a standby reconcile after committing it; the
// master, the source, does not.
func TestAppliedAsksReconcile(t *testing.T) {
	for _, master := range []bool{false, true} {
		r := NewReceiver(Config{Master: master, Peer: "p", Pos: Position{DB: "x", Log: 1, Stream: 1}, Have: true})
		if err := r.Step(Batch{Seq: 2, Node: "p", Master: !master, DB: "x", From: 1, To: 2, Final: true}); err != nil {
			t.Fatal(err)
		}
		rd := r.Ready()
		r.Advance()
		if rd.Part == nil || rd.Part.Commit == nil || *rd.Part.Commit != (Position{DB: "x", Log: 2, Stream: 2}) {
			t.Fatalf("master %v: %+v", master, rd)
		}
		_ = r.Step(Applied{Pos: *rd.Part.Commit, Reconcile: "table t changed shape on the peer"})
		rd = r.Ready()
		if pos, _ := r.Position(); pos.Log != 2 || rd.Applied == nil || rd.Stop == master || (r.Reconciling() != "") == master {
			t.Fatalf("master %v: position %+v, ready %+v, reconciling %q", master, pos, rd, r.Reconciling())
		}
	}
}

// A restored backup whose log was refilled by new writes up to the sequence
// shipped is recognised by the shipped position the shipper recorded.
func TestCompareOwnRecordedShipped(t *testing.T) {
	s := Shipped{DB: "x", To: 9, Have: true}
	for _, shipped := range []uint64{0, 6} { // a mark of 0 (a new id) is a mark
		if got := CompareOwn(s, Own{DB: "x", LogHigh: 9, Shipped: shipped, ShippedKnown: true}); got != OwnRestored {
			t.Fatalf("refilled backup, recorded %d: %s", shipped, got)
		}
	}
	if got := CompareOwn(s, Own{DB: "x", LogHigh: 9, Shipped: 9, ShippedKnown: true}); got != OwnSame {
		t.Fatalf("recorded 9: %s", got)
	}
	if got := CompareOwn(s, Own{DB: "x", LogHigh: 9}); got != OwnSame {
		t.Fatalf("nothing recorded: %s", got)
	}
}

func TestAskCurrent(t *testing.T) {
	for _, c := range []struct {
		about, own string
		want       bool
	}{{"", "b4", true}, {"b4", "b4", true}, {"b3", "b4", false}} {
		if got := AskCurrent(c.about, c.own); got != c.want {
			t.Errorf("AskCurrent(%q, %q) = %v", c.about, c.own, got)
		}
	}
}
