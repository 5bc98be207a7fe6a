package event

import "testing"

func BenchmarkDecode(b *testing.B) {
	e, _ := New("bench", "a", "monitor", NodeActivated, 7, t0, map[string]any{"reason": "F6: outage: link to the peer closed and its process refused the connection", "peer": "b"})
	data, _ := e.Encode()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeStored(b *testing.B) {
	e, _ := New("bench", "a", "monitor", NodeActivated, 7, t0, map[string]any{"reason": "F6: outage: link to the peer closed and its process refused the connection", "peer": "b"})
	data, _ := e.Encode()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeStored(data); err != nil {
			b.Fatal(err)
		}
	}
}
