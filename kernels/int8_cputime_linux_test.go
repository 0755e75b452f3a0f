//go:build linux

package kernels

import (
	"syscall"
	"time"
	"unsafe"
)

// threadCPUTime is the CPU time of the calling OS thread (CLOCK_THREAD_CPUTIME_ID): unlike
// the wall clock it does not count the time the thread waits for a core, so ratios of two
// kernels timed with it on a shared machine are not distorted by the other jobs' share of
// the cores (they still share caches and memory bandwidth). Callers lock the OS thread.
func threadCPUTime() (time.Duration, bool) {
	const clockThreadCPUTimeID = 3
	var ts syscall.Timespec
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
