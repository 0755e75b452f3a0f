package kernels

import "math"

// RMSNorm writes x / sqrt(mean(x^2) + eps) * w into out (out may alias x). The sum of
// squares is taken in float64: it costs nothing here and removes the only long
// accumulation in the norm.
func RMSNorm(out, x, w []float32, eps float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	scale := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
	w = w[:len(x)]
	out = out[:len(x)]
	for i, v := range x {
		out[i] = v * scale * w[i]
	}
}

// SiLU returns x * sigmoid(x).
func SiLU(x float32) float32 {
	return x / (1 + float32(math.Exp(float64(-x))))
}

// Sigmoid returns 1 / (1 + e^-x).
func Sigmoid(x float32) float32 {
	return 1 / (1 + float32(math.Exp(float64(-x))))
}

// Softmax replaces x by softmax(x) in three passes (max, sum of exp(x-max), scale):
// subtracting the maximum keeps every exponent <= 0, so nothing overflows. An empty x is
// left alone.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x[1:] {
		m = max(m, v)
	}
	var sum float64
	for i, v := range x {
		e := math.Exp(float64(v - m))
		x[i] = float32(e)
		sum += e
	}
	inv := float32(1 / sum)
	for i := range x {
		x[i] *= inv
	}
}

// Axpy adds a*x to y.
func Axpy(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += a * x[i]
	}
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
