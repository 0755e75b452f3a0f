package kernels

// mwqDotsGeneric is the pure-Go twin of the MWQDots assembly (arguments validated), and
// the path of purego builds and other architectures, so the inner loop is branch-free:
// each activation is masked by -(bit), an all-ones or all-zero int32, instead of tested.
func mwqDotsGeneric(dots []int32, blocks []byte, stride, off, nb int, x []int8) {
	G := len(x) / MWQGroup
	for i := range dots {
		xg := x[(i%G)*MWQGroup : (i%G+1)*MWQGroup]
		var total int32
		for j := 0; j < nb; j++ {
			pl := blocks[i*stride+off+j*mwqPlaneBytes : i*stride+off+(j+1)*mwqPlaneBytes]
			var s int32
			for b, bits := range pl {
				m := int32(bits)
				xs := xg[b*8 : b*8+8 : b*8+8]
				s += int32(xs[0])&-(m&1) + int32(xs[1])&-(m>>1&1) + int32(xs[2])&-(m>>2&1) + int32(xs[3])&-(m>>3&1) +
					int32(xs[4])&-(m>>4&1) + int32(xs[5])&-(m>>5&1) + int32(xs[6])&-(m>>6&1) + int32(xs[7])&-(m>>7&1)
			}
			total += s << j
		}
		dots[i] = total
	}
}

// gemvMWQGeneric is the pure-Go twin of GemvMWQ (arguments validated): the reference
// every path must match bit for bit.
func gemvMWQGeneric(out []float32, base []byte, b1 int, planes [][]byte, x []int8, xSums []int32, xScale float32) {
	gemvMWQDots(out, base, b1, planes, x, xSums, xScale, true)
}
