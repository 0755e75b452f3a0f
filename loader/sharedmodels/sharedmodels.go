// Package sharedmodels locates the reference models that tests compare against. They live
// outside the repository, in ../shared/models beside the checkout (the directory holding
// go.mod); on a fresh clone without them, tests that need them skip with a message.
package sharedmodels

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns ../shared/models relative to the module root of the working directory, and
// whether it exists.
func Dir() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "..", "shared", "models")
			st, err := os.Stat(p)
			return p, err == nil && st.IsDir()
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// Find returns ../shared/models or skips the test.
func Find(t testing.TB) string {
	t.Helper()
	p, ok := Dir()
	if !ok {
		t.Skip("../shared/models not found beside the repository (a fresh clone): skipping tests on real models")
	}
	return p
}

// Path returns ../shared/models/rel or skips the test when it is absent.
func Path(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Find(t), rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("../shared/models/%s not found: skipping", rel)
	}
	return p
}
