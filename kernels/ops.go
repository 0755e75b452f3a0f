package kernels

import "math"

// RMSNorm writes x / sqrt(mean(x^2) + eps) * w into out (out may alias x). The sum of
// squares is taken in float64: it costs nothing here and removes the only long
// accumulation in the norm. Each output is (x[i]*scale)*w[i] on every path, so paths
// differ at most by the rounding of scale (the float64 sums add in different orders).
func RMSNorm(out, x, w []float32, eps float32) {
	rmsNormImpl(out[:len(x)], x, w[:len(x)], eps)
}

// SiLU returns x * sigmoid(x).
func SiLU(x float32) float32 {
	return x / (1 + float32(math.Exp(float64(-x))))
}

// Sigmoid returns 1 / (1 + e^-x).
func Sigmoid(x float32) float32 {
	return 1 / (1 + float32(math.Exp(float64(-x))))
}

// Axpy adds a*x to y. Every path computes y[i] + a*x[i] with two roundings (no fused
// multiply-add), so all paths give identical results.
func Axpy(y []float32, a float32, x []float32) {
	axpyImpl(y, a, x[:len(y)])
}

// SiLUMul sets gate[i] = silu(gate[i]) * up[i], the SwiGLU activation. The SIMD paths use
// a polynomial exp (relative error a few ulp; AVX2 flushes silu values below about
// 2^-126 to zero).
func SiLUMul(gate, up []float32) {
	siluMulImpl(gate, up[:len(gate)])
}

// Add adds x to y element-wise.
func Add(y, x []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += x[i]
	}
}

// RoPEInvFreq fills inv (len = rotary dims/2) with theta^(-2i/dims), the angular
// frequency of pair i.
func RoPEInvFreq(inv []float64, dims int, theta float64) {
	for i := range inv {
		inv[i] = math.Pow(theta, -float64(2*i)/float64(dims))
	}
}

// RoPEAngles fills cos and sin (same length as inv) for position pos. Angles are formed
// in float64 so that large positions keep their precision.
func RoPEAngles(cos, sin []float32, inv []float64, pos int) {
	for i, f := range inv {
		s, c := math.Sincos(float64(pos) * f)
		cos[i], sin[i] = float32(c), float32(s)
	}
}

// RoPEInterleaved rotates one head x (len 2*len(cos)) with pairs (2i, 2i+1), the
// convention of GGUF files of llama-family models (whose q/k rows llama.cpp's
// converter permutes into this order).
func RoPEInterleaved(x, cos, sin []float32) {
	x = x[:2*len(cos)]
	for i, c := range cos {
		s := sin[i]
		a, b := x[2*i], x[2*i+1]
		x[2*i] = a*c - b*s
		x[2*i+1] = a*s + b*c
	}
}

// RoPENeoX rotates one head x (len 2*len(cos)) with pairs (i, i+d/2), the Hugging Face
// rotate_half convention.
func RoPENeoX(x, cos, sin []float32) {
	h := len(cos)
	x = x[:2*h]
	for i, c := range cos {
		s := sin[i]
		a, b := x[i], x[i+h]
		x[i] = a*c - b*s
		x[i+h] = a*s + b*c
	}
}
