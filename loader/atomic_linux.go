package loader

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// createTemp creates the temporary file of an AtomicFile. On Linux it is unnamed
// (O_TMPFILE), so that a process killed mid-write leaves nothing in the directory; it
// gets a name only in linkTemp, just before the rename. File systems without O_TMPFILE,
// or a system without /proc (which linkTemp needs), get a named file.
func createTemp(dir, base string) (*os.File, string, error) {
	if namedTempsOnly {
		return createNamed(dir, base)
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err == nil {
		if _, serr := os.Stat(procFD(fd)); serr == nil {
			return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed "+base+")")), "", nil
		}
		unix.Close(fd)
	}
	return createNamed(dir, base)
}

// namedTempsOnly makes createTemp use named files (tests of the fallback).
var namedTempsOnly = false

func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// linkTemp gives the unnamed file f a temporary name in dir (which the rename then
// moves over the destination): linkat cannot replace an existing file, rename can.
func linkTemp(f *os.File, dir, base string) (string, error) {
	for i := 1; i <= 10000; i++ {
		name := filepath.Join(dir, tempPrefix(base)+strconv.Itoa(os.Getpid()))
		if i > 1 {
			name = filepath.Join(dir, fmt.Sprintf("%s%d-%d", tempPrefix(base), os.Getpid(), i))
		}
		err := unix.Linkat(unix.AT_FDCWD, procFD(int(f.Fd())), unix.AT_FDCWD, name, unix.AT_SYMLINK_FOLLOW)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("linking the temporary file: %w", err)
		}
	}
	return "", errors.New("linking the temporary file: no free name")
}
