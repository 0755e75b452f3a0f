package loader

import (
	"fmt"
	"math"
	"os"
)

// Mapping is a read-only shared memory map of a whole file. Data is valid until Close;
// touching it afterwards faults, so tensor views must not outlive their Model.
type Mapping struct {
	Path string
	Data []byte
	// mapped is false for empty files, which cannot be mmapped (EINVAL) and need no unmap.
	mapped bool
}

// Map memory-maps path read-only. Pages are loaded lazily by the kernel and shared with
// the page cache, so opening a large model costs no reads and no heap.
func Map(path string) (*Mapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	defer f.Close() // the mapping keeps its own reference to the file
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("loader: %s: is a directory, not a file", path)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("loader: %s: not a regular file", path)
	}
	size := st.Size()
	if size == 0 {
		return &Mapping{Path: path, Data: []byte{}}, nil
	}
	if size < 0 || uint64(size) > math.MaxInt {
		return nil, fmt.Errorf("loader: %s: file size %d cannot be mapped", path, size)
	}
	data, err := mapFile(f, int(size))
	if err != nil {
		return nil, fmt.Errorf("loader: %s: mmap: %w", path, err)
	}
	return &Mapping{Path: path, Data: data, mapped: true}, nil
}

// Close unmaps the file. It is safe to call more than once.
func (m *Mapping) Close() error {
	if m == nil || !m.mapped {
		return nil
	}
	data := m.Data
	m.Data, m.mapped = nil, false
	if err := unmapFile(data); err != nil {
		return fmt.Errorf("loader: %s: munmap: %w", m.Path, err)
	}
	return nil
}
