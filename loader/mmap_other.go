//go:build !unix && !windows

package loader

import (
	"io"
	"os"
)

// mapFile reads f into memory where the platform has no file mapping: weights then
// cost their size in RAM, but every path that works on a mapping works on it.
func mapFile(f *os.File, size int) ([]byte, error) {
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, err
	}
	return data, nil
}

func unmapFile(data []byte) error { return nil }
