package conflict

import "testing"

func TestDecide(t *testing.T) {
	v := func(m, s uint64) Version { return Version{m, s} }
	for _, c := range []struct {
		name       string
		local, in  Version
		fromMaster bool
		want       Outcome
		after      Version
	}{
		{"new row from master", v(0, 0), v(1, 0), true, Apply, v(1, 0)},
		{"new row from standby", v(0, 0), v(0, 1), false, Apply, v(0, 1)},
		{"next change", v(3, 1), v(4, 1), true, Apply, v(4, 1)},
		{"after a seen change", v(3, 1), v(3, 2), false, Apply, v(3, 2)},
		{"duplicate", v(3, 1), v(3, 1), true, Stale, v(3, 1)},
		{"older", v(3, 2), v(2, 2), true, Stale, v(3, 2)},
		{"update/update on the standby", v(1, 1), v(2, 0), true, TakeIncoming, v(2, 1)},
		{"update/update on the master", v(2, 0), v(1, 1), false, KeepLocal, v(2, 1)},
		{"insert/insert on the standby", v(0, 1), v(1, 0), true, TakeIncoming, v(1, 1)},
		{"insert/insert on the master", v(1, 0), v(0, 1), false, KeepLocal, v(1, 1)},
		{"second standby change after a conflict", v(2, 1), v(1, 2), false, KeepLocal, v(2, 2)},
	} {
		got, after := Decide(c.local, c.in, c.fromMaster)
		if got != c.want || after != c.after {
			t.Errorf("%s: Decide(%v, %v, %v) = %v %v, want %v %v", c.name, c.local, c.in, c.fromMaster, got, after, c.want, c.after)
		}
	}
}

// Both nodes end with the same version whatever the order the two
// concurrent changes arrive in, and the master's change wins on both.
func TestSymmetric(t *testing.T) {
	for m := uint64(0); m < 4; m++ {
		for s := uint64(0); s < 4; s++ {
			base := Version{m, s}
			onMaster := Version{m + 1, s}
			onStandby := Version{m, s + 1}
			oS, vS := Decide(onStandby, onMaster, true) // the standby gets the master's change
			oM, vM := Decide(onMaster, onStandby, false)
			if oS != TakeIncoming || oM != KeepLocal || vS != vM {
				t.Fatalf("base %v: standby %v %v, master %v %v", base, oS, vS, oM, vM)
			}
			if !vS.Covers(onMaster) || !vS.Covers(onStandby) {
				t.Fatalf("merged %v does not cover both", vS)
			}
		}
	}
}

func TestKind(t *testing.T) {
	if k := Kind("d", "u"); k != "delete/update" {
		t.Fatal(k)
	}
	if k := Kind("i", "i"); k != "insert/insert" {
		t.Fatal(k)
	}
}
