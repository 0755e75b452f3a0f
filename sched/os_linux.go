package sched

import (
	"os"

	"golang.org/x/sys/unix"
)

// openDirect opens path for reads that bypass the page cache (O_DIRECT).
func openDirect(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
}

// dropCached asks the kernel to drop the file's cached pages in [off, off+n).
func dropCached(fd int, off, n int64) error {
	return unix.Fadvise(fd, off, n, unix.FADV_DONTNEED)
}

// mapNoReserve keeps the slot arenas from being charged against the overcommit limit
// up front: only the pages a load writes are ever backed.
const mapNoReserve = unix.MAP_NORESERVE
