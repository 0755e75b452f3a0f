package kernels

// MWQ (Matryoshka bit-nested weights, docs/algorithms.md §2, docs/quant.md "MWQ"): a
// weight row is cut into groups of 128; each group has a base of b1 bits (f16 scale s1,
// f16 zero z, b1 bit-planes of the code q) and ±1 residual planes k = b1+1..K (f16
// scale s_k, one sign bit per weight), each plane in its own byte range. At b bits,
// with int8 activations x (per-token scale xs) and Σx the group's activation sum:
//
//	y = xs * Σ_g [ s1*(x·q - z*Σx) + Σ_{k=b1+1..b} s_k*(2*(x·bits_k) - Σx) ]
//
// since a ±1 weight is 2*bit-1. Every x·(bits) is an exact int32 inner product, and the
// float combination has one fixed order (GemvMWQ), so all ISAs return the same bits.
// On amd64 the fused kernels of asm/mwq do both parts in one pass over the weights
// (mwq_amd64.go); elsewhere MWQDots takes the dots and Go combines them.
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

// mwqChunkInts bounds the int32 dot scratch of gemvMWQDots on its stack; rows are done
// in chunks that fit (16 KiB: small enough to stay in L1 next to the weights).
const mwqChunkInts = 4096

// mwqMaxPlanes bounds the residual planes of one product (b1 >= 1 and K <= 8).
const mwqMaxPlanes = 7

// GemvMWQ computes out[r] for r < len(out) at b = b1 + len(planes) bits (see the package
// comment above): base holds len(out)*G blocks of MWQBaseBlockBytes(b1), each planes[p]
// len(out)*G blocks of MWQPlaneBlockBytes (plane k = b1+1+p), G = len(x)/128; x is the
// int8 input with scale xScale and xSums its group sums (MWQGroupSums). It does not
// allocate. Every path returns the bits of the generic twin (gemvMWQGeneric): per row,
// for g = 0..G-1 in order,
//
//	v = s1*(float32(dq) - z*float32(sx)); v += s_k*float32(2*dp_k - sx) for each plane k; acc += v
//
// each product and sum rounded to float32 (never fused), and out[r] = acc*xScale.
func GemvMWQ(out []float32, base []byte, b1 int, planes [][]byte, x []int8, xSums []int32, xScale float32) {
	rows, cols := len(out), len(x)
	if cols == 0 || cols%MWQGroup != 0 {
		panic("kernels: GemvMWQ: len(x) must be a positive multiple of 128")
	}
	if b1 < 1 || b1 > 7 || len(planes) > mwqMaxPlanes {
		panic("kernels: GemvMWQ: base width outside 1..7 or more than 7 planes")
	}
	G := cols / MWQGroup
	bb := MWQBaseBlockBytes(b1)
	if len(base) < rows*G*bb || len(xSums) < G {
		panic("kernels: GemvMWQ: base or xSums too short")
	}
	for _, p := range planes {
		if len(p) < rows*G*MWQPlaneBlockBytes {
			panic("kernels: GemvMWQ: a plane is too short")
		}
	}
	if G*(1+len(planes)) > mwqChunkInts {
		panic("kernels: GemvMWQ: rows too long for the scratch")
	}
	if rows == 0 || gemvMWQFused(out, base, b1, planes, x, xSums, xScale) {
		return
	}
	gemvMWQDots(out, base, b1, planes, x, xSums, xScale, false)
}

// gemvMWQDots is GemvMWQ (arguments validated) in two passes per chunk of rows: dots
// takes every integer inner product into a stack scratch (MWQDots's contract: the
// generic twin when generic, else the path's kernel), then gemvMWQRows combines them.
// (A bool, not a function value: the scratch must not escape to the heap.)
func gemvMWQDots(out []float32, base []byte, b1 int, planes [][]byte, x []int8, xSums []int32, xScale float32, generic bool) {
	dots := func(d []int32, blocks []byte, stride, off, nb int, x []int8) {
		if generic {
			mwqDotsGeneric(d, blocks, stride, off, nb, x)
		} else {
			mwqDots(d, blocks, stride, off, nb, x)
		}
	}
	rows := len(out)
	G := len(x) / MWQGroup
	np := len(planes)
	bb := MWQBaseBlockBytes(b1)
	var buf [mwqChunkInts]int32
	chunk := max(1, mwqChunkInts/(G*(1+np)))
	for r0 := 0; r0 < rows; r0 += chunk {
		nr := min(chunk, rows-r0)
		nbk := nr * G
		dots(buf[:nbk], base[r0*G*bb:], bb, 4, b1, x)
		for p, pl := range planes {
			dots(buf[(1+p)*nbk:(2+p)*nbk], pl[r0*G*MWQPlaneBlockBytes:], MWQPlaneBlockBytes, 2, 1, x)
		}
		gemvMWQRows(out[r0:r0+nr], base[r0*G*bb:], bb, planes, r0*G*MWQPlaneBlockBytes, buf[:(1+np)*nbk], xSums[:G], xScale)
	}
}

// gemvMWQRows combines the dots of len(out) rows (dots[q*n+r*G+g] for quantity q: 0 the
// base, 1+p plane p; n = len(out)*G) with the f16 scales, in the order GemvMWQ
// documents. The explicit float32 conversions keep the compiler from fusing a multiply
// and an add (the spec allows it otherwise), which the assembly does not do either.
func gemvMWQRows(out []float32, base []byte, bb int, planes [][]byte, planeOff int, dots []int32, xSums []int32, xScale float32) {
	G := len(xSums)
	n := len(out) * G
	for r := range out {
		var acc float32
		for g, sx := range xSums {
			i := r*G + g
			bo := i * bb
			s1 := F16ToF32(uint16(base[bo]) | uint16(base[bo+1])<<8)
			z := F16ToF32(uint16(base[bo+2]) | uint16(base[bo+3])<<8)
			fsx := float32(sx)
			v := float32(s1 * float32(float32(dots[i])-float32(z*fsx)))
			for p, pl := range planes {
				po := planeOff + i*MWQPlaneBlockBytes
				sk := F16ToF32(uint16(pl[po]) | uint16(pl[po+1])<<8)
				v = float32(v + float32(sk*float32(2*dots[(1+p)*n+i]-sx)))
			}
			acc = float32(acc + v)
		}
		out[r] = float32(acc * xScale)
	}
}
