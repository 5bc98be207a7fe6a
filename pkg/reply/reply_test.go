package reply

import (
	"errors"
	"testing"
)

func TestOKAndFail(t *testing.T) {
	b := OK(struct {
		Epoch uint64 `json:"epoch"`
	}{7})
	var v struct {
		OK    bool   `json:"ok"`
		Epoch uint64 `json:"epoch"`
	}
	if err := Decode(b, &v); err != nil || !v.OK || v.Epoch != 7 {
		t.Fatalf("Decode(%s) = %v, %+v", b, err, v)
	}
	b = Fail(&Error{Code: CodeNotMaster, Message: "ask a", Node: "a"})
	want := `{"ok":false,"error":{"code":"not_master","message":"ask a","node":"a"}}`
	if string(b) != want {
		t.Fatalf("Fail = %s, want %s", b, want)
	}
	var re *Error
	if err := Decode(b, nil); !errors.As(err, &re) || re.Node != "a" {
		t.Fatalf("Decode refusal: %v", err)
	}
	if err := Decode(Fail(errors.New("boom")), nil); !errors.As(err, &re) || re.Code != CodeInternal {
		t.Fatalf("plain error: %v", err)
	}
	if err := Decode([]byte(`{}`), nil); err == nil {
		t.Fatal("reply without ok accepted")
	}
}
