//go:build race

package store

// raceEnabled: the race detector is on (memory figures mean little).
const raceEnabled = true
