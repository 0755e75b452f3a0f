//go:build unix

package loader

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// allocAnon maps n bytes of anonymous memory starting on a 2 MiB boundary, so that the
// kernel can back it with whole huge pages from the first byte. The up to 2 MiB of
// slack is virtual only: it is never touched, so it takes no memory.
func allocAnon(n int) (*anonRegion, error) {
	mem, err := unix.Mmap(-1, 0, n+hugePageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("mmap of %d bytes of anonymous memory: %w", n, err)
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	skip := int((hugePageSize - base%hugePageSize) % hugePageSize)
	r := &anonRegion{mem: mem, data: mem[skip : skip+n : skip+n]}
	// Ask before the first touch, so that faults allocate huge pages. The kernel may
	// refuse (THP compiled out: EINVAL); the memory still works with small pages.
	r.huge = adviseHugePages(r.data)
	return r, nil
}

func (r *anonRegion) freeze() error {
	if err := unix.Mprotect(r.mem, unix.PROT_READ); err != nil {
		return fmt.Errorf("mprotect: %w", err)
	}
	return nil
}

func (r *anonRegion) close() error {
	if r == nil || r.mem == nil {
		return nil
	}
	mem := r.mem
	r.mem, r.data = nil, nil
	if err := unix.Munmap(mem); err != nil {
		return fmt.Errorf("loader: munmap: %w", err)
	}
	return nil
}
