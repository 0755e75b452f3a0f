package loader

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"unsafe"
)

// LoadMode says where a model's weights live while it runs.
type LoadMode uint8

const (
	// LoadMmap uses the weights in place in a read-only shared mapping of the file:
	// opening costs no reads, pages are shared with the page cache (and with other
	// processes using the same file) and loaded on first touch. Page-cache pages are
	// 4 KiB, so streaming them costs a TLB miss every 4 KiB; measured on this project's
	// VM at 2-11 GB/s.
	LoadMmap LoadMode = iota
	// LoadCopy reads the weights once into anonymous memory outside the Go heap, asks
	// for transparent huge pages (MADV_HUGEPAGE) and makes it read-only. It costs one
	// read of the file and private memory the size of the weights, and streams at
	// anonymous-memory speed (20-24 GB/s measured on the same VM).
	LoadCopy
)

func (l LoadMode) String() string {
	switch l {
	case LoadMmap:
		return "mmap"
	case LoadCopy:
		return "copy"
	}
	return fmt.Sprintf("LoadMode(%d)", uint8(l))
}

// ParseLoadMode maps "mmap" or "copy" (as given to --load) to a LoadMode.
func ParseLoadMode(s string) (LoadMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "mmap":
		return LoadMmap, nil
	case "copy":
		return LoadCopy, nil
	}
	return LoadMmap, fmt.Errorf("unknown load mode %q (want mmap or copy)", s)
}

// OpenOptions controls OpenWith.
type OpenOptions struct {
	Load LoadMode
}

// OpenWith is Open followed by what the options ask for (with LoadCopy, CopyToAnon).
func OpenWith(path string, o OpenOptions) (*Model, error) {
	m, err := Open(path)
	if err != nil {
		return nil, err
	}
	if err := m.Apply(o); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Apply applies the options to an opened model (for models not opened by path, such
// as OpenHFFiles). It must run before anything takes views of the tensors (engine.Load).
func (m *Model) Apply(o OpenOptions) error {
	switch o.Load {
	case LoadMmap:
		return nil
	case LoadCopy:
		return m.CopyToAnon()
	}
	return fmt.Errorf("loader: unknown load mode %v", o.Load)
}

// LoadMode reports where the tensors live: LoadCopy after CopyToAnon, else LoadMmap
// (which includes in-memory models, whose bytes are used in place).
func (m *Model) LoadMode() LoadMode {
	if m.anon != nil {
		return LoadCopy
	}
	return LoadMmap
}

// AnonInfo describes the anonymous copy: its size in bytes and whether the kernel
// accepted MADV_HUGEPAGE for it. Zero values before CopyToAnon.
func (m *Model) AnonInfo() (bytes int, hugePages bool) {
	if m.anon == nil {
		return 0, false
	}
	return len(m.anon.data), m.anon.huge
}

// CopyToAnon moves every tensor's bytes into one anonymous read-only memory region
// (off the Go heap, with huge pages requested), re-points the tensors into it and
// releases the file mappings; Close frees the region. Tensor bytes are read from the
// file with pread when they lie in a mapping (no page faults on the mapping, and the
// kernel's readahead works on large reads), else copied. Views taken of tensors
// before the call (engine.Load) still point at the old memory, so call it first.
// Calling it again does nothing.
//
// Tensors are grouped into spans of contiguous bytes (a whole GGUF data section, a
// safetensors file body), and each span keeps its address modulo 64 in the copy, so
// the alignment the file gave tensors (GGUF: 32 bytes) is preserved.
func (m *Model) CopyToAnon() error {
	if m.anon != nil {
		return nil
	}
	refs := sortedTensorRefs(m.Tensors)
	spans, total := m.anonSpans(refs)
	if total == 0 {
		return nil
	}

	region, err := allocAnon(total)
	if err != nil {
		return fmt.Errorf("loader: %s: %w", m.Path, err)
	}
	fail := func(err error) error {
		region.close()
		return fmt.Errorf("loader: %s: copying weights: %w", m.Path, err)
	}
	if err := m.fillAnon(region, spans); err != nil {
		return fail(err)
	}
	// Read-only, like the file mapping: a stray write faults instead of silently
	// changing the weights of every State.
	if err := region.freeze(); err != nil {
		return fail(err)
	}
	repointTensors(refs, spans, region)
	for _, t := range m.Tensors {
		if len(t.Data) == 0 {
			t.Data = []byte{} // do not keep pointing into a mapping about to go away
		}
	}
	var errs []error
	for _, mp := range m.mappings {
		errs = append(errs, mp.Close())
	}
	m.mappings = nil
	m.anon = region
	return errors.Join(errs...)
}

// tensorRef is a tensor with bytes and the address they start at.
type tensorRef struct {
	t     *Tensor
	start uintptr
}

// sortedTensorRefs returns the tensors that have bytes, by address, so that tensors
// sharing a mapping or a slice come together.
func sortedTensorRefs(tensors []*Tensor) []tensorRef {
	refs := make([]tensorRef, 0, len(tensors))
	for _, t := range tensors {
		if len(t.Data) > 0 {
			refs = append(refs, tensorRef{t, uintptr(unsafe.Pointer(unsafe.SliceData(t.Data)))})
		}
	}
	slices.SortFunc(refs, func(a, b tensorRef) int {
		switch {
		case a.start < b.start:
			return -1
		case a.start > b.start:
			return 1
		}
		return 0
	})
	return refs
}

// mappingOf returns the index of the file mapping holding address a, or -1.
func (m *Model) mappingOf(a uintptr) int {
	for i, mp := range m.mappings {
		if len(mp.Data) == 0 {
			continue
		}
		base := uintptr(unsafe.Pointer(unsafe.SliceData(mp.Data)))
		if a >= base && a < base+uintptr(len(mp.Data)) {
			return i
		}
	}
	return -1
}

// anonSpan is a run of tensors copied as one block: source addresses [lo, hi), the
// file mapping they lie in (index in m.mappings, or -1), the first ref, the source
// bytes and the offset of the copy in the region.
type anonSpan struct {
	lo, hi  uintptr
	mapping int
	first   int
	src     []byte
	dstOff  int
}

// anonSpans groups refs (sorted by address) into spans and lays the spans out in the
// region, returning them and the region's size.
//
// Tensors join the current span when both lie in the same file mapping (any gap is
// padding or headers of that file, safe to read) or, in memory, when they overlap it.
// Touching in-memory tensors are not merged: two slices that happen to be adjacent may
// be different objects, and one slice must not cover both.
func (m *Model) anonSpans(refs []tensorRef) ([]anonSpan, int) {
	var spans []anonSpan
	for i, r := range refs {
		end := r.start + uintptr(len(r.t.Data))
		mi := m.mappingOf(r.start)
		if n := len(spans); n > 0 {
			s := &spans[n-1]
			if (mi >= 0 && mi == s.mapping) || (mi < 0 && s.mapping < 0 && r.start < s.hi) {
				s.hi = max(s.hi, end)
				continue
			}
		}
		spans = append(spans, anonSpan{lo: r.start, hi: end, mapping: mi, first: i})
	}
	total := 0
	for i := range spans {
		s := &spans[i]
		// Keep the span's address modulo 64: the copy is as aligned as the original.
		s.dstOff = alignUpInt(total, 64) + int(s.lo%64)
		total = s.dstOff + int(s.hi-s.lo)
		// The source as a slice derived from the first tensor of the span, which points
		// into the same mapping or slice as every byte of the span.
		first := refs[s.first].t.Data
		s.src = unsafe.Slice(unsafe.SliceData(first), int(s.hi-s.lo))
	}
	return spans, total
}

// fillAnon copies every span into region: with pread from the file when the span lies
// in a file mapping (no page faults on the mapping, and the kernel's readahead works
// on large reads), else from memory.
func (m *Model) fillAnon(region *anonRegion, spans []anonSpan) error {
	files := map[int]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, s := range spans {
		dst := region.data[s.dstOff : s.dstOff+len(s.src)]
		if s.mapping >= 0 && m.mappings[s.mapping].Path != "" {
			mp := m.mappings[s.mapping]
			f := files[s.mapping]
			if f == nil {
				var err error
				if f, err = os.Open(mp.Path); err != nil {
					return err
				}
				files[s.mapping] = f
			}
			off := int64(s.lo - uintptr(unsafe.Pointer(unsafe.SliceData(mp.Data))))
			if _, err := f.ReadAt(dst, off); err != nil {
				return err
			}
			continue
		}
		copy(dst, s.src)
	}
	return nil
}

// repointTensors points every ref's tensor at its bytes in region (overlapping views
// keep their relative positions).
func repointTensors(refs []tensorRef, spans []anonSpan, region *anonRegion) {
	si := 0
	for _, r := range refs {
		for r.start >= spans[si].hi {
			si++
		}
		s := spans[si]
		off := s.dstOff + int(r.start-s.lo)
		n := len(r.t.Data)
		r.t.Data = region.data[off : off+n : off+n]
	}
}

func alignUpInt(n, a int) int { return (n + a - 1) &^ (a - 1) }

// hugePageSize is the x86-64 and arm64 (4 KiB granule) transparent huge page size.
const hugePageSize = 2 << 20

// anonRegion is private anonymous memory obtained with mmap, outside the Go heap (the
// GC neither scans nor moves it, and it does not count towards GOGC).
type anonRegion struct {
	mem  []byte // the whole mapping, as returned by mmap (what munmap needs)
	data []byte // the usable part, starting on a huge-page boundary
	huge bool   // MADV_HUGEPAGE accepted
}
