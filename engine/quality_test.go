package engine

import (
	"os"
	"testing"
)

// The long quality runs (docs/testing.md): `go test ./...` runs a short version of each,
// still asserting a bound that a broken quantizer or converter fails; MOLE_QUALITY=1 adds
// the full versions, whose point is the number over the whole text or table.

// qualityRun reports whether MOLE_QUALITY=1 asks for the long quality runs.
func qualityRun() bool { return os.Getenv("MOLE_QUALITY") == "1" }

// requireQuality skips t unless MOLE_QUALITY=1; what says what the skipped run does.
func requireQuality(t testing.TB, what string) {
	t.Helper()
	if !qualityRun() {
		t.Skipf("set MOLE_QUALITY=1 to run %s (docs/testing.md)", what)
	}
}
