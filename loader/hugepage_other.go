//go:build !linux

package loader

// adviseHugePages has no portable equivalent outside Linux (macOS uses superpages only
// on request at mmap time, the BSDs promote pages on their own); small pages work.
func adviseHugePages(b []byte) bool { return false }
