//go:build !amd64

package kernels

const isAMD64 = false
