package kernels

// MWQ (Matryoshka bit-nested weights, docs/algorithms.md §2, docs/quant.md "MWQ"): a
// weight row is cut into groups of 128; each group has a base of b1 bits (f16 scale s1,
// f16 zero z, b1 bit-planes of the code q) and ±1 residual planes k = b1+1..K (f16
// scale s_k, one sign bit per weight), each plane in its own byte range. At b bits,
// with int8 activations x (per-token scale xs) and Σx the group's activation sum:
//
//	y = xs * Σ_g [ s1*(x·q - z*Σx) + Σ_{k=b1+1..b} s_k*(2*(x·bits_k) - Σx) ]
//
// since a ±1 weight is 2*bit-1. Every x·(bits) is an exact int32 inner product
// (MWQDots: the architecture-specific part); the per-group float combination is plain Go
// shared by every path, so all ISAs return the same bits.
//
// Bit order: weight k of a group is bit k%8 of byte k/8 of a 16-byte plane, so bytes
// 0..7 read as a little-endian uint64 are the mask of weights 0..63 (AVX-512 KMOVQ).

// MWQGroup is the number of weights per MWQ group.
const MWQGroup = 128

const mwqPlaneBytes = MWQGroup / 8

// MWQBaseBlockBytes is the byte size of one base block of b1 bits (f16 s1, f16 z, b1 planes).
func MWQBaseBlockBytes(b1 int) int { return 4 + b1*mwqPlaneBytes }

// MWQPlaneBlockBytes is the byte size of one residual-plane block (f16 s_k, 16 bytes).
const MWQPlaneBlockBytes = 2 + mwqPlaneBytes

// MWQDots computes, for every block i < len(dots),
//
//	dots[i] = Σ_{j<nb} 2^j Σ_{k<128} x[(i%G)*128+k] * bit(j, k)
//
// where G = len(x)/128, block i starts at byte i*stride of blocks, and its plane j is the
// 16 bytes at i*stride+off+16*j. With nb = b1 on base blocks (off 4) this is x·q; with
// nb = 1 on residual-plane blocks (off 2) it is x·bits. len(x) must be a multiple of 128
// and nb at most 7 (so 2^j*127*128 sums stay far inside int32).
func MWQDots(dots []int32, blocks []byte, stride, off, nb int, x []int8) {
	n := len(dots)
	if len(x) == 0 || len(x)%MWQGroup != 0 {
		panic("kernels: MWQDots: len(x) must be a positive multiple of 128")
	}
	if nb < 1 || nb > 7 || off < 0 || stride < off+nb*mwqPlaneBytes {
		panic("kernels: MWQDots: bad block geometry")
	}
	if n == 0 {
		return
	}
	if len(blocks) < (n-1)*stride+off+nb*mwqPlaneBytes {
		panic("kernels: MWQDots: blocks shorter than len(dots) blocks")
	}
	mwqDots(dots, blocks, stride, off, nb, x)
}

// MWQGroupSums writes sums[g] = Σ_{k<128} x[g*128+k] for g < len(x)/128.
func MWQGroupSums(sums []int32, x []int8) {
	for g := range len(x) / MWQGroup {
		var s int32
		for _, v := range x[g*MWQGroup : (g+1)*MWQGroup] {
			s += int32(v)
		}
		sums[g] = s
	}
}

// mwqChunkInts bounds the int32 dot scratch GemvMWQ keeps on its stack; rows are done
// in chunks that fit (16 KiB: small enough to stay in L1 next to the weights).
const mwqChunkInts = 4096

// GemvMWQ computes out[r] for r < len(out) at b = b1 + len(planes) bits (see the package
// comment above): base holds len(out)*G blocks of MWQBaseBlockBytes(b1), each planes[p]
// len(out)*G blocks of MWQPlaneBlockBytes (plane k = b1+1+p), G = len(x)/128; x is the
// int8 input with scale xScale and xSums its group sums (MWQGroupSums). It does not
// allocate.
func GemvMWQ(out []float32, base []byte, b1 int, planes [][]byte, x []int8, xSums []int32, xScale float32) {
	rows, cols := len(out), len(x)
	if cols == 0 || cols%MWQGroup != 0 {
		panic("kernels: GemvMWQ: len(x) must be a positive multiple of 128")
	}
	G := cols / MWQGroup
	np := len(planes)
	bb := MWQBaseBlockBytes(b1)
	if len(base) < rows*G*bb || len(xSums) < G {
		panic("kernels: GemvMWQ: base or xSums too short")
	}
	for _, p := range planes {
		if len(p) < rows*G*MWQPlaneBlockBytes {
			panic("kernels: GemvMWQ: a plane is too short")
		}
	}
	var buf [mwqChunkInts]int32
	chunk := max(1, mwqChunkInts/(G*(1+np)))
	if G*(1+np) > mwqChunkInts {
		panic("kernels: GemvMWQ: rows too long for the scratch")
	}
	for r0 := 0; r0 < rows; r0 += chunk {
		nr := min(chunk, rows-r0)
		nbk := nr * G
		bd := buf[:nbk]
		MWQDots(bd, base[r0*G*bb:], bb, 4, b1, x)
		for p, pl := range planes {
			MWQDots(buf[(1+p)*nbk:(2+p)*nbk], pl[r0*G*MWQPlaneBlockBytes:], MWQPlaneBlockBytes, 2, 1, x)
		}
		for r := 0; r < nr; r++ {
			var acc float32
			for g := 0; g < G; g++ {
				i := r*G + g
				bo := (r0*G + i) * bb
				s1 := F16ToF32(uint16(base[bo]) | uint16(base[bo+1])<<8)
				z := F16ToF32(uint16(base[bo+2]) | uint16(base[bo+3])<<8)
				sx := xSums[g]
				v := s1 * (float32(bd[i]) - z*float32(sx))
				for p, pl := range planes {
					po := (r0*G + i) * MWQPlaneBlockBytes
					sk := F16ToF32(uint16(pl[po]) | uint16(pl[po+1])<<8)
					v += sk * float32(2*buf[(1+p)*nbk+i]-sx)
				}
				acc += v
			}
			out[r0+r] = acc * xScale
		}
	}
}
