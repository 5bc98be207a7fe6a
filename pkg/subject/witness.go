package subject

import "strings"

// The witness (F14): a pair's nodes ask `tandem witness` for the pair's
// lease on WitnessLease(pair); the witness answers every pair on
// WitnessLease("*").

// WitnessLease is the subject pair's nodes send lease requests to.
func WitnessLease(pair string) string { return Root + ".witness." + pair + ".lease" }

// WitnessPair is the pair a lease request subject names, or "" when subj is
// not one.
func WitnessPair(subj string) string {
	rest, ok := strings.CutPrefix(subj, Root+".witness.")
	if !ok {
		return ""
	}
	pair, _ := strings.CutSuffix(rest, ".lease")
	if pair == rest {
		return ""
	}
	return pair
}
