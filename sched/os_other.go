//go:build !linux

package sched

import (
	"errors"
	"os"
)

// openDirect: O_DIRECT is Linux's; elsewhere reads go through the page cache.
func openDirect(string) (*os.File, error) {
	return nil, errors.New("O_DIRECT is not available on this system")
}

// dropCached does nothing where posix_fadvise is not available.
func dropCached(int, int64, int64) error { return nil }

// mapNoReserve: MAP_NORESERVE is Linux's; elsewhere untouched pages cost nothing anyway.
const mapNoReserve = 0
