//go:build !unix

package engine

// dropPages is a no-op where madvise is not available (see latent_stream_unix.go).
func dropPages([]byte) {}
