//go:build !purego

package kernels

// mwqDots runs the assembly of asm/mwq: AVX-512 (mask registers) or AVX2 (byte masks
// built with shuffles), which AVXVNNI also uses (it adds no mask registers and the
// int16 sums need no VNNI).
func mwqDots(dots []int32, blocks []byte, stride, off, nb int, x []int8) {
	switch active {
	case AVX512:
		mwqDotsAVX512(&dots[0], len(dots), &blocks[off], stride, nb, &x[0], len(x)/MWQGroup)
	case AVX2, AVXVNNI:
		mwqDotsAVX2(&dots[0], len(dots), &blocks[off], stride, nb, &x[0], len(x)/MWQGroup)
	default:
		mwqDotsGeneric(dots, blocks, stride, off, nb, x)
	}
}

// mwqFusedMaxGroups bounds the groups per row of the fused path (its copies of x and
// of the group sums live on the stack): 112 groups, 14336 columns.
const mwqFusedMaxGroups = 112

// mwqFusedBlocks is the size of the per-block value scratch (8 KiB of float32).
const mwqFusedBlocks = 2048

// gemvMWQFused runs GemvMWQ (arguments validated) on the block kernels of asm/mwq when
// the path has them and reports whether it did (AVX-512, AVX2 and AVX-VNNI, stored base
// widths 2 and 5). The kernel writes each block's float value v (the twin's per-group
// value) into a stack scratch, 16 (AVX2: 8) consecutive blocks per step, reading every
// array front to back;
// the rows' sums over their groups then run here in group order, as gemvMWQRows does.
// Block counts that are not a multiple of the step end with one step over the last
// blocks (blocks it repeats get the same values again). Fewer blocks than one step in
// all, longer rows or other widths take the two-pass form.
func gemvMWQFused(out []float32, base []byte, b1 int, planes [][]byte, x []int8, xSums []int32, xScale float32) bool {
	const maxLanes = 16
	var lanes int
	switch active {
	case AVX512:
		lanes = 16
	case AVX2, AVXVNNI:
		lanes = 8
	default:
		return false
	}
	if b1 != 2 && b1 != 5 {
		return false
	}
	rows := len(out)
	G := len(x) / MWQGroup
	if rows*G < lanes || G > mwqFusedMaxGroups {
		return false
	}
	bb := MWQBaseBlockBytes(b1)
	// x and its sums extended by 16 groups (wrapped), so the groups of one step are
	// consecutive in memory. When G is a multiple of the step a step never wraps.
	var xbuf [(mwqFusedMaxGroups + maxLanes) * MWQGroup]int8
	var sbuf [mwqFusedMaxGroups + maxLanes]int32
	xe := x
	if G%lanes != 0 {
		for i := 0; i < G+lanes; i += G {
			copy(xbuf[i*MWQGroup:(G+lanes)*MWQGroup], x)
		}
		xe = xbuf[:]
	}
	for i := range G + lanes {
		sbuf[i] = xSums[i%G]
	}
	var v [mwqFusedBlocks]float32
	var pp [mwqMaxPlanes + 1]*byte
	chunk := mwqFusedBlocks / G
	for r0 := 0; r0 < rows; r0 += chunk {
		hi := min(r0+chunk, rows)
		lo := min(r0, hi-(lanes+G-1)/G) // at least one step of blocks
		nb := (hi - lo) * G
		blk := lo * G
		steps := nb / lanes
		for p, pl := range planes {
			pp[p] = &pl[blk*MWQPlaneBlockBytes]
		}
		mwqBlocks(lanes, b1, &v[0], steps, &base[blk*bb], &pp[0], len(planes), &xe[0], &sbuf[0], G)
		if tail := nb - lanes; nb%lanes != 0 {
			for p, pl := range planes {
				pp[p] = &pl[(blk+tail)*MWQPlaneBlockBytes]
			}
			g := tail % G
			mwqBlocks(lanes, b1, &v[tail], 1, &base[(blk+tail)*bb], &pp[0], len(planes), &xe[g*MWQGroup], &sbuf[g], G)
		}
		for r := r0; r < hi; r++ {
			var acc float32
			for _, w := range v[(r-lo)*G : (r-lo+1)*G] {
				acc = float32(acc + w)
			}
			out[r] = float32(acc * xScale)
		}
	}
	return true
}

// mwqBlocks calls the kernel of the step width lanes and base width b1 (direct calls,
// so that go:noescape keeps the caller's arrays on its stack).
func mwqBlocks(lanes, b1 int, v *float32, n int, base *byte, planes **byte, np int, x *int8, xSums *int32, groups int) {
	switch {
	case lanes == 16 && b1 == 2:
		mwqBlocks2AVX512(v, n, base, planes, np, x, xSums, groups)
	case lanes == 16:
		mwqBlocks5AVX512(v, n, base, planes, np, x, xSums, groups)
	case b1 == 2:
		mwqBlocks2AVX2(v, n, base, planes, np, x, xSums, groups)
	default:
		mwqBlocks5AVX2(v, n, base, planes, np, x, xSums, groups)
	}
}
