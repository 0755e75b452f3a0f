//go:build !linux

package loader

import (
	"errors"
	"os"
)

// createTemp creates the temporary file of an AtomicFile: a named one (O_TMPFILE is
// Linux's).
func createTemp(dir, base string) (*os.File, string, error) { return createNamed(dir, base) }

// linkTemp is never called: temporary files are always named here.
func linkTemp(*os.File, string, string) (string, error) {
	return "", errors.New("unnamed temporary files are Linux-only")
}
