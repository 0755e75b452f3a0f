//go:build linux

package engine

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user + system) of the whole process so far, which,
// unlike the wall clock, does not count time its threads spend waiting for a core.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
