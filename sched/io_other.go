//go:build !unix

package sched

import "errors"

// errNoBudget is why a memory budget cannot run here: its cache reads expert planes with
// pread into anonymous mappings and steers the page cache with madvise, which only Unix
// systems offer. Everything else in mole runs without it.
var errNoBudget = errors.New("sched: a memory budget needs a Unix system (pread, mmap, madvise)")

// ioWorker is never created on this system; the type exists so Cache compiles.
type ioWorker struct {
	arena  [nClass][]byte
	direct bool
}

func newIOWorker(*Cache) (*ioWorker, error) { return nil, errNoBudget }

func (w *ioWorker) load(*op) error { return errNoBudget }
func (w *ioWorker) release(*op)    {}
func (w *ioWorker) close() error   { return nil }

// DropMapped has nothing to hand back without madvise.
func (l *Layout) DropMapped() {}

// MeasureIO needs the same system calls as the cache it measures for.
func MeasureIO(*Layout, int) ([]IOPoint, error) { return nil, errNoBudget }
