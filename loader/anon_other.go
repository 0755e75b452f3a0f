//go:build !unix

package loader

import "unsafe"

// allocAnon without mmap: the Go heap stands in for anonymous memory, aligned by hand to
// a huge-page boundary as the mmap version is. The GC does not scan a []byte, so only
// its size counts against GOGC; freeze cannot make it read-only, which only loses the
// guard against stray writes, not correctness.
func allocAnon(n int) (*anonRegion, error) {
	mem := make([]byte, n+hugePageSize)
	base := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	skip := int((hugePageSize - base%hugePageSize) % hugePageSize)
	return &anonRegion{mem: mem, data: mem[skip : skip+n : skip+n]}, nil
}

func (r *anonRegion) freeze() error { return nil }

func (r *anonRegion) close() error {
	if r != nil {
		r.mem, r.data = nil, nil
	}
	return nil
}
