//go:build arm64 && !purego

package kernels

import (
	"encoding/binary"
	"math"
	"math/rand"
	"testing"
)

// Each WORD-encoded macro of sdot_arm64.h runs through a one-instruction function
// (neon_macros_arm64.s) with two or more register assignments that together set every
// bit of each register field; the result must equal the instruction's definition in Go.

func macroInputs(rng *rand.Rand) (d, n, m [16]byte) {
	fill := func(b *[16]byte) {
		switch rng.Intn(4) {
		case 0: // extremes
			for i := range b {
				b[i] = []byte{0x80, 0x7f, 0x00, 0xff}[rng.Intn(4)]
			}
		default:
			rng.Read(b[:])
		}
	}
	fill(&d)
	fill(&n)
	fill(&m)
	return
}

func i32s(b [16]byte) (v [4]int32) {
	for i := range v {
		v[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return
}

func i16s(b [16]byte) (v [8]int16) {
	for i := range v {
		v[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return
}

func TestNEONMacros(t *testing.T) {
	type fn = func(d, n, m *[16]byte)
	dot := func(d, n, m [16]byte, signed bool, idx int) (r [16]byte) {
		acc := i32s(d)
		for i := 0; i < 4; i++ {
			for j := 0; j < 4; j++ {
				mj := m[4*i+j]
				if idx >= 0 {
					mj = m[4*idx+j]
				}
				if signed {
					acc[i] += int32(int8(n[4*i+j])) * int32(int8(mj))
				} else {
					acc[i] += int32(n[4*i+j]) * int32(mj)
				}
			}
			binary.LittleEndian.PutUint32(r[4*i:], uint32(acc[i]))
		}
		return
	}
	mull := func(d, n, m [16]byte, hi, acc bool) (r [16]byte) {
		a := i16s(d)
		off := 0
		if hi {
			off = 8
		}
		for i := 0; i < 8; i++ {
			p := int16(int8(n[off+i])) * int16(int8(m[off+i]))
			if acc {
				p += a[i]
			}
			binary.LittleEndian.PutUint16(r[2*i:], uint16(p))
		}
		return
	}
	sadalp := func(d, n, _ [16]byte) (r [16]byte) {
		a, h := i32s(d), i16s(n)
		for i := 0; i < 4; i++ {
			binary.LittleEndian.PutUint32(r[4*i:], uint32(a[i]+int32(h[2*i])+int32(h[2*i+1])))
		}
		return
	}
	f32s := func(b [16]byte) (v [4]float32) {
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return
	}
	put := func(v [4]float32) (r [16]byte) {
		for i := range v {
			binary.LittleEndian.PutUint32(r[4*i:], math.Float32bits(v[i]))
		}
		return
	}
	fcvtl := func(_, n, _ [16]byte) [16]byte {
		var v [4]float32
		for i := range v {
			v[i] = F16ToF32(binary.LittleEndian.Uint16(n[2*i:]))
		}
		return put(v)
	}
	scvtf := func(_, n, _ [16]byte) [16]byte {
		var v [4]float32
		for i, x := range i32s(n) {
			v[i] = float32(x)
		}
		return put(v)
	}
	fmul := func(idx int) func(_, n, m [16]byte) [16]byte {
		return func(_, n, m [16]byte) [16]byte {
			a, b := f32s(n), f32s(m)
			var v [4]float32
			for i := range v {
				bi := b[i]
				if idx >= 0 {
					bi = b[idx]
				}
				v[i] = a[i] * bi
			}
			return put(v)
		}
	}
	cases := []struct {
		name    string
		dotprod bool
		fns     []fn
		want    func(d, n, m [16]byte) [16]byte
	}{
		{"SDOT", true, []fn{macroSDOTA, macroSDOTB}, func(d, n, m [16]byte) [16]byte { return dot(d, n, m, true, -1) }},
		{"UDOT", true, []fn{macroUDOTA, macroUDOTB}, func(d, n, m [16]byte) [16]byte { return dot(d, n, m, false, -1) }},
		{"SDOT_E[3]", true, []fn{macroSDOTEA}, func(d, n, m [16]byte) [16]byte { return dot(d, n, m, true, 3) }},
		{"SDOT_E[1]", true, []fn{macroSDOTEB}, func(d, n, m [16]byte) [16]byte { return dot(d, n, m, true, 1) }},
		{"SDOT_E[2]", true, []fn{macroSDOTEC}, func(d, n, m [16]byte) [16]byte { return dot(d, n, m, true, 2) }},
		{"SDOT_E[0]", true, []fn{macroSDOTED}, func(d, n, m [16]byte) [16]byte { return dot(d, n, m, true, 0) }},
		{"SMULL_8B", false, []fn{macroSMULL8BA, macroSMULL8BB}, func(d, n, m [16]byte) [16]byte { return mull(d, n, m, false, false) }},
		{"SMULL2_16B", false, []fn{macroSMULL216BA, macroSMULL216BB}, func(d, n, m [16]byte) [16]byte { return mull(d, n, m, true, false) }},
		{"SMLAL_8B", false, []fn{macroSMLAL8BA, macroSMLAL8BB}, func(d, n, m [16]byte) [16]byte { return mull(d, n, m, false, true) }},
		{"SMLAL2_16B", false, []fn{macroSMLAL216BA, macroSMLAL216BB}, func(d, n, m [16]byte) [16]byte { return mull(d, n, m, true, true) }},
		{"SADALP_8H", false, []fn{macroSADALP8HA, macroSADALP8HB}, sadalp},
		{"FCVTL_4S", false, []fn{macroFCVTL4SA, macroFCVTL4SB}, fcvtl},
		{"SCVTF_4S", false, []fn{macroSCVTF4SA, macroSCVTF4SB}, scvtf},
		{"FMUL_4S", false, []fn{macroFMUL4SA, macroFMUL4SB}, fmul(-1)},
		{"FMUL_4S_E0", false, []fn{macroFMUL4SE0A, macroFMUL4SE0B}, fmul(0)},
		{"FMUL_4S_E[3]", false, []fn{macroFMUL4SEA}, fmul(3)},
		{"FMUL_4S_E[1]", false, []fn{macroFMUL4SEB}, fmul(1)},
		{"FMUL_4S_E[2]", false, []fn{macroFMUL4SEC}, fmul(2)},
	}
	rng := rand.New(rand.NewSource(3))
	for _, c := range cases {
		if c.dotprod && !HasDotProd() {
			t.Logf("%s: CPU lacks dotprod, skipped", c.name)
			continue
		}
		for v, f := range c.fns {
			for it := 0; it < 200; it++ {
				d, n, m := macroInputs(rng)
				want := c.want(d, n, m)
				got := d
				f(&got, &n, &m)
				if got != want && !(c.name[0] == 'F' && sameNaNs(got, want)) {
					t.Fatalf("%s (register set %d): d=%x n=%x m=%x: got %x, want %x", c.name, v, d, n, m, got, want)
				}
			}
		}
	}
}

// sameNaNs reports whether a and b differ only in NaN lanes that are NaN in both (NaN
// payloads and quieting are not part of what the kernels promise).
func sameNaNs(a, b [16]byte) bool {
	for i := 0; i < 16; i += 4 {
		x := math.Float32frombits(binary.LittleEndian.Uint32(a[i:]))
		y := math.Float32frombits(binary.LittleEndian.Uint32(b[i:]))
		if math.Float32bits(x) != math.Float32bits(y) && !(x != x && y != y) {
			return false
		}
	}
	return true
}
