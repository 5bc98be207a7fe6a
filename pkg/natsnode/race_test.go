//go:build race

package natsnode

const raceEnabled = true
