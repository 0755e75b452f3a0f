package loader

import "golang.org/x/sys/unix"

// adviseHugePages asks the kernel to back b with transparent huge pages, which it does
// for madvised regions when /sys/kernel/mm/transparent_hugepage/enabled is "madvise"
// or "always". It reports whether the advice was accepted.
func adviseHugePages(b []byte) bool { return unix.Madvise(b, unix.MADV_HUGEPAGE) == nil }
