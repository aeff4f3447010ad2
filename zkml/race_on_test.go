//go:build race

package zkml

const raceEnabled = true
