// Package tty tells whether a writer is a terminal, so that progress bars redrawn with
// \r are drawn only where a person watches them and never end up in a log file.
package tty

import "io"

// IsTerminal reports whether w is a terminal: an *os.File (or anything with Fd) whose
// descriptor is a terminal device. Buffers, pipes and files are not.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && isTerminal(f.Fd())
}
