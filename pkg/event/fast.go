package event

import (
	"bytes"

	"github.com/tandem-ha/tandem/pkg/jsonscan"
)

// decodeStoredFast reads the plain form of an envelope as Encode writes it
// (any order of its attributes, each at most once, no unknown one, strings
// without escapes but \\, \" and \/) into what json.Unmarshal would make of
// it; false for anything else, which the caller then decodes with
// json.Unmarshal. A replay decodes every stored event, and encoding/json
// took half of its CPU (issue 19: audit replay within 2× of the floor).
func decodeStoredFast(b []byte) (Envelope, bool) {
	var e Envelope
	sc := jsonscan.New(b)
	var seen [10]bool
	if !sc.Byte('{') {
		return e, false
	}
	for more := !sc.Byte('}'); more; {
		key, ok := sc.Key()
		if !ok {
			return Envelope{}, false
		}
		k := envelopeKey(string(key))
		if k < 0 || seen[k] || !readAttribute(&sc, &e, k) {
			return Envelope{}, false
		}
		seen[k] = true
		if more, ok = sc.Next(); !ok {
			return Envelope{}, false
		}
	}
	return e, sc.End()
}

// envelopeKeys are the envelope's attributes, as readAttribute numbers them.
var envelopeKeys = [...]string{"specversion", "id", "source", "type", "time", "datacontenttype", "pair", "node", "epoch", "data"}

func envelopeKey(key string) int {
	for i, k := range envelopeKeys {
		if k == key {
			return i
		}
	}
	return -1
}

// readAttribute reads the value of attribute k into e.
func readAttribute(sc *jsonscan.Scanner, e *Envelope, k int) bool {
	switch k {
	case 4:
		start := sc.I
		if _, ok := sc.StrBytes(); !ok {
			return false
		}
		// What encoding/json hands time.Time: the literal, quotes and all.
		return e.Time.UnmarshalJSON(sc.B[start:sc.I]) == nil
	case 8:
		var ok bool
		e.Epoch, ok = sc.Uint(20)
		return ok
	case 9:
		d, ok := sc.Object()
		e.Data = bytes.Clone(d)
		return ok
	}
	text := [...]*string{0: &e.SpecVersion, 1: &e.ID, 2: &e.Source, 3: &e.Type, 5: &e.DataContentType, 6: &e.Pair, 7: &e.Node}
	var ok bool
	*text[k], ok = sc.Str()
	return ok
}
