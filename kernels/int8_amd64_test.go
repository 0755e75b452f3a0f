//go:build !purego

package kernels

import (
	"math/rand/v2"
	"testing"
)

func TestVEXMacros(t *testing.T) {
	if !Supported(AVXVNNI) {
		t.Skip("CPU lacks AVX-VNNI: the {vex} VPDPBUSD macros cannot run here")
	}
	r := rand.New(rand.NewPCG(6, 6))
	for _, f := range []func(*[8]int32, *[32]byte, *[32]byte){vexDpbusd0, vexDpbusd1, vexDpbusd2, vexDpbusd3} {
		for it := 0; it < 200; it++ {
			var acc, want [8]int32
			var u, s [32]byte
			for i := range acc {
				acc[i] = int32(r.Uint32())
			}
			for i := range u {
				u[i], s[i] = byte(r.Uint32()), byte(r.Uint32())
				if it == 0 {
					u[i], s[i] = 255, 0x80 // extremes: 255 * -128
				}
			}
			for i := range want {
				want[i] = acc[i]
				for j := 0; j < 4; j++ {
					want[i] += int32(u[4*i+j]) * int32(int8(s[4*i+j]))
				}
			}
			f(&acc, &u, &s)
			if acc != want {
				t.Fatalf("VPDPBUSD_VEX_Y: got %v want %v", acc, want)
			}
		}
	}
}
