//go:build purego || !amd64

package kernels

func streamRead(buf []byte) uint64 { return streamReadGeneric(buf) }
