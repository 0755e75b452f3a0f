//go:build race

package engine

// raceEnabled: built with -race, where sync.Pool drops items at random (so the kernels'
// pooled scratch allocates) and allocation counts mean nothing.
const raceEnabled = true
