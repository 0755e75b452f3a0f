// Package quant holds mole's weight quantizers, pure functions from float32 matrices and
// calibration statistics to the integer layouts of docs/format.md:
//
//   - DGQ A8W4 (dgq.go): 4-bit codes, per-(row, group) zero points and integer
//     multipliers S2, one float scale per row, found by the two-phase grid search of
//     docs/algorithms.md §1 against calibration activations;
//   - per-row int8 (q8.go), the A8W8 baseline;
//   - per-group asymmetric round-to-nearest int4 (rtn.go), the yardstick DGQ must beat;
//   - the 99.5th-percentile outlier smoothing factors (smooth.go) and the calibration
//     statistics every quantizer reads (calib.go).
//
// The package knows nothing about models: engine collects the statistics by running the
// model, folds the smoothing into neighbouring weights and writes the tensors. The
// MWQ quantizer (mwq*.go) reads the same Stats.
package quant
