//go:build !purego && (amd64 || arm64)

package kernels

const purego = false
