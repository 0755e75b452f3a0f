package kernels

import "unsafe"

func unsafeBytes[T ~int8 | ~byte](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s))
}
