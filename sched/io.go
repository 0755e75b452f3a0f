//go:build unix

package sched

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioWorker holds what the I/O goroutine uses: the file (opened with O_DIRECT when the file
// system allows it, and buffered) and the slot arenas, anonymous memory off the Go heap.
type ioWorker struct {
	c        *Cache
	direct   bool
	fdDirect *os.File // nil when O_DIRECT is not available
	fd       *os.File
	arena    [nClass][]byte
	backed   [nClass][]bool // the slot's pages hold data (counted in Cache.held)
	ps       int64
}

func newIOWorker(c *Cache) (*ioWorker, error) {
	w := &ioWorker{c: c, ps: int64(os.Getpagesize())}
	f, err := os.Open(c.lay.Path)
	if err != nil {
		return nil, fmt.Errorf("sched: %w", err)
	}
	w.fd = f
	if c.o.Backend == Mmap {
		// No read-around on faults and no fault-around of neighbouring cached pages: the
		// pages of a plane enter the resident set only when its load asks for them.
		for _, le := range c.lay.Units {
			for _, ee := range le {
				for k := range ee {
					for p := range 3 {
						madviseSpan(ee[k].View[p], w.ps, unix.MADV_RANDOM)
					}
				}
			}
		}
		return w, nil
	}
	for cl := 0; cl < nClass; cl++ {
		n := int(c.nSlots[cl]) * int(c.slotSize[cl])
		w.backed[cl] = make([]bool, c.nSlots[cl])
		if n == 0 {
			continue
		}
		// Address space only: pages are backed when a read writes them, and handed back
		// with MADV_DONTNEED when a slot is released.
		b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|mapNoReserve)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("sched: reserving %s of address space for the expert cache: %w", FormatSize(int64(n)), err)
		}
		w.arena[cl] = b
	}
	if fd, err := openDirect(c.lay.Path); err == nil {
		// Some file systems accept the flag and then refuse the reads (EINVAL): try one.
		probe := w.arena[0][:align]
		if _, err := unix.Pread(int(fd.Fd()), probe, 0); err == nil {
			w.fdDirect, w.direct = fd, true
			clear(probe)
		} else {
			fd.Close()
		}
		if err := unix.Madvise(probe, unix.MADV_DONTNEED); err != nil {
			w.close()
			return nil, fmt.Errorf("sched: madvise: %w", err)
		}
	}
	return w, nil
}

func (w *ioWorker) slotBytes(cl uint8, slot int32) []byte {
	s := w.c.slotSize[cl]
	return w.arena[cl][int64(slot)*s : int64(slot+1)*s]
}

// load brings unit o.unit into slot o.slot. On a read error the plane is copied from the
// mapping (results stay right) and the error is reported.
func (w *ioWorker) load(o *op) error {
	c := w.c
	un := w.unitOf(o.unit)
	var n int64
	for p := 0; p < 3; p++ {
		n += int64(un.Len[p])
	}
	c.loadBytes.Add(n)
	if c.o.Backend == Mmap {
		var first error
		for p := 0; p < 3; p++ {
			if err := madviseSpan(un.View[p], w.ps, unix.MADV_WILLNEED); err != nil && first == nil {
				first = fmt.Errorf("sched: madvise(WILLNEED): %w", err)
			}
		}
		w.count(o.class, o.slot, true)
		return first
	}
	buf := w.slotBytes(o.class, o.slot)
	w.count(o.class, o.slot, true)
	var first error
	for p := 0; p < 3; p++ {
		dst := buf[c.partOff[o.class][p]:]
		off, l := un.Off[p], int64(un.Len[p])
		var err error
		if w.direct {
			ao := off &^ (align - 1)
			end := roundUp(off+l, align)
			err = readFull(int(w.fdDirect.Fd()), dst[:end-ao], ao, off-ao+l)
		} else {
			in := off % align
			err = readFull(int(w.fd.Fd()), dst[in:in+l], off, l)
			if err == nil {
				// Drop what the read put in the page cache, so that the next load of this
				// plane costs a read from the device again.
				err = dropCached(int(w.fd.Fd()), off, l)
			}
		}
		if err != nil {
			in := off % align
			copy(dst[in:in+l], un.View[p])
			if first == nil {
				first = fmt.Errorf("sched: reading %d bytes at %d of %s: %w (used the mapping instead)", l, off, c.lay.Path, err)
			}
		}
	}
	return first
}

// readFull preads into b at off until at least need bytes are in (O_DIRECT may stop at
// the end of the file, inside the last aligned block).
func readFull(fd int, b []byte, off, need int64) error {
	var got int64
	for got < need {
		n, err := unix.Pread(fd, b[got:], off+got)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err
		}
		if n == 0 {
			return fmt.Errorf("unexpected end of file after %d of %d bytes", got, need)
		}
		got += int64(n)
	}
	return nil
}

// release hands a victim's memory back to the kernel.
func (w *ioWorker) release(o *op) {
	c := w.c
	if c.o.Backend == Mmap {
		un := w.unitOf(o.unit)
		for p := 0; p < 3; p++ {
			madviseSpan(un.View[p], w.ps, unix.MADV_DONTNEED)
			dropCached(int(w.fd.Fd()), un.Off[p], int64(un.Len[p]))
		}
		w.count(o.class, o.slot, false)
		return
	}
	unix.Madvise(w.slotBytes(o.class, o.slot), unix.MADV_DONTNEED)
	w.count(o.class, o.slot, false)
}

// count tracks the bytes the cache's memory holds: a slot counts from its first load
// until its release.
func (w *ioWorker) count(cl uint8, slot int32, load bool) {
	c := w.c
	if w.backed[cl] == nil {
		w.backed[cl] = make([]bool, c.nSlots[cl])
	}
	if w.backed[cl][slot] == load {
		return
	}
	w.backed[cl][slot] = load
	if load {
		c.held.Add(c.slotSize[cl])
	} else {
		c.held.Add(-c.slotSize[cl])
	}
}

func (w *ioWorker) unitOf(u int32) *Unit {
	c := w.c
	k := int(u) % c.levels
	x := int(u) / c.levels
	return &c.lay.Units[x/c.ne][x%c.ne][k]
}

// madviseSpan applies advice to the whole pages covering b (part of a mapping).
func madviseSpan(b []byte, ps int64, advice int) error {
	if len(b) == 0 {
		return nil
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := p &^ uintptr(ps-1)
	hi := uintptr(roundUp(int64(p)+int64(len(b)), ps))
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, lo, hi-lo, uintptr(advice)); errno != 0 {
		return errno
	}
	return nil
}

func (w *ioWorker) close() error {
	var errs []error
	for cl := range w.arena {
		if w.arena[cl] != nil {
			errs = append(errs, unix.Munmap(w.arena[cl]))
			w.arena[cl] = nil
		}
	}
	if w.fdDirect != nil {
		errs = append(errs, w.fdDirect.Close())
	}
	if w.fd != nil {
		errs = append(errs, w.fd.Close())
	}
	return errors.Join(errs...)
}

// DropMapped hands the pages of every plane's view back to the kernel (MADV_DONTNEED on
// the mapping): with the Pread backend the views are never read, and pages a run without
// a budget faulted in would otherwise stay in the process's resident set. The views must
// lie in a read-only file mapping (there DONTNEED only unmaps; elsewhere it would zero).
func (l *Layout) DropMapped() {
	ps := int64(os.Getpagesize())
	for _, le := range l.Units {
		for _, ee := range le {
			for k := range ee {
				for p := range 3 {
					madviseSpan(ee[k].View[p], ps, unix.MADV_DONTNEED)
				}
			}
		}
	}
}
