package config

import "testing"

func TestAuditMaxBytes(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "0": 0, "512": 512, "10GiB": 10 << 30, "2 MB": 2e6, "1KiB": 1024} {
		got, err := Audit{MaxBytes: in}.MaxBytesValue()
		if err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"-1", "lots", "1.5GiB", "99999999999TiB"} {
		if _, err := (Audit{MaxBytes: bad}).MaxBytesValue(); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	c := Default()
	c.Pair, c.Node = "p", "a"
	c.Audit.MaxBytes = "lots"
	if err := c.Validate(); err == nil {
		t.Error("Validate accepted audit.max_bytes=lots")
	}
}
