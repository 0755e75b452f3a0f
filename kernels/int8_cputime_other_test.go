//go:build !linux

package kernels

import "time"

// threadCPUTime: not available here (the benchmarks then report wall-clock ratios only).
func threadCPUTime() (time.Duration, bool) { return 0, false }
