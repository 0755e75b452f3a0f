//go:build unix

package engine

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropPages tells the kernel that this process is done with the pages of b, a view into
// a read-only file mapping: they leave its resident set (the page cache keeps them, and
// a later read faults them back in), so that streaming through a file larger than
// memory does not show as a resident set the size of the file. Pages b shares with its
// neighbours at either end are kept.
func dropPages(b []byte) {
	if len(b) == 0 {
		return
	}
	ps := uintptr(os.Getpagesize())
	start := uintptr(unsafePointer(b))
	lo := (start + ps - 1) &^ (ps - 1)
	hi := (start + uintptr(len(b))) &^ (ps - 1)
	if hi <= lo {
		return
	}
	_ = unix.Madvise(b[lo-start:hi-start], unix.MADV_DONTNEED)
}
