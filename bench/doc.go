// Package bench is the harness behind `mole bench` and `mole gen-model`.
//
// It runs llama-bench's two tests on a model — pp<N>, a prompt of N tokens, and tg<N>,
// N generated tokens — with deterministic synthetic tokens (so expert routing is the
// same in every repetition), a warm-up before the timed runs and the tokenizer and the
// sampler left out, exactly as llama-bench leaves them out. Beside each result it puts
// the roofline measured in the same process: the read bandwidth of a streaming loop
// over a buffer far larger than the caches, and the compute peaks of the chosen kernel
// path: register-only loops of its int8 multiply instructions (kernels.IntPeakMACs) and
// of its float32 FMA (kernels.FloatPeakFLOPs). Decode is bound by bandwidth ÷ the weight
// bytes one token reads (counted from the model's actual dtypes, see Traffic); prefill
// by the compute peaks, the integer one for quantized matrices and the float one for
// F32/F16/BF16 matrices (so an F16 model's pp is measured against the FMA peak).
//
// Results print as llama-bench's markdown table (plus bytes/token, GB/s, % roofline and
// peak RSS), as JSON with llama-bench's field names where one exists, as CSV, and as
// an SVG of tokens/s against threads with the roofline drawn as a line.
//
// MWQ models run every test at each width of Options.ExpertBits (engine.Model.SetExpertBits),
// narrowest first; bytes/token then counts the base and the bit-planes read at that width
// (TrafficAt), and the peak RSS read after each width shows the planes it brought in.
//
// GenerateGGUF writes random-weight models of real models' shapes (Presets) with
// llama.cpp's tensor names and metadata, so the same file runs in mole and llama.cpp;
// with GenOptions.Scheme it writes mole's own types (q8, a8w4, mwq24, mwq58) laid out as
// `mole quantize` writes them, with random but valid encodings (genmole.go).
package bench
