package engine

import (
	"context"

	"github.com/mole-llm/mole/kernels"
	"github.com/mole-llm/mole/loader"
	"github.com/mole-llm/mole/quant"
)

// This file re-exports, under engine's names, what a program running models needs from
// the packages below engine (the kernel path, where weights live, tensor types, atomic
// output files, quantization options), so that such a program imports engine alone and
// the packages below it stay free to change. Types are aliases where a value only passes through engine to a
// package that takes it (bench takes ISAs); the functions are engine's own.

// ISA is a kernel path: generic, avx2, avxvnni, avx512 or neon.
type ISA = kernels.ISA

// ParseISA maps a kernel path's name (as given to --isa) to an ISA.
func ParseISA(s string) (ISA, error) { return kernels.ParseISA(s) }

// ISASupported reports whether this CPU and build can run the kernel path i.
func ISASupported(i ISA) bool { return kernels.Supported(i) }

// ActiveISA is the kernel path in use: the best this CPU has, MOLE_ISA's choice, or the
// last SetISA.
func ActiveISA() ISA { return kernels.Active() }

// SetISA makes i the kernel path of every model in the process (the choice is
// process-wide, as the kernels' dispatch is) and returns the previous one, to restore
// later. It fails, changing nothing, when this CPU or build lacks i.
func SetISA(i ISA) (prev ISA, err error) { return kernels.SetISA(i) }

// ISAWarning is why the MOLE_ISA environment variable was not followed at start-up ("" when
// it was, or is unset).
func ISAWarning() string { return kernels.ISAWarning }

// CPUInfo describes the CPU, its features and the kernel path chosen, one item per line.
func CPUInfo() string { return kernels.CPUInfo() }

// LoadMode says where a model's weights live while it runs (OpenOptions.Load).
type LoadMode = loader.LoadMode

const (
	// LoadMmap runs the weights in place in a shared mapping of the file (the default).
	LoadMmap = loader.LoadMmap
	// LoadCopy reads the weights once into private, huge-page memory.
	LoadCopy = loader.LoadCopy
)

// ParseLoadMode maps "mmap" or "copy" (as given to --load) to a LoadMode.
func ParseLoadMode(s string) (LoadMode, error) { return loader.ParseLoadMode(s) }

// DType is a tensor's storage type, as written to a file (QuantizeOptions.Router,
// GGUFOptions.DType) or listed by File.Tensors.
type DType = loader.DType

// The tensor types a program chooses between when writing a model; File.Tensors may
// list others.
const (
	F32  = loader.F32
	F16  = loader.F16
	Q8_0 = loader.Q8_0
	// MWQPlane is a residual bit-plane of an MWQ tensor: more bits of its base's weights,
	// not weights of its own.
	MWQPlane = loader.MWQPlane
)

// MetaValue is one metadata value of a GGUF file (GGUFOptions.Meta).
type MetaValue = loader.Value

// MetaString is a string metadata value.
func MetaString(s string) MetaValue { return loader.StringValue(s) }

// AtomicFile is an output file that appears under its name only when committed: a
// stopped or failed write leaves nothing behind.
type AtomicFile = loader.AtomicFile

// CreateAtomic starts an atomic write of path, to end with Commit or Abort. It creates
// the temporary file at once, so that a caller doing so before long work fails on an
// unwritable destination first; writes fail once ctx is cancelled.
func CreateAtomic(ctx context.Context, path string) (*AtomicFile, error) {
	return loader.CreateAtomic(ctx, path)
}

// DGQOptions tunes the a8w4 grid search (QuantizeOptions.DGQ).
type DGQOptions = quant.DGQOptions

// BuiltinCalibration is the calibration text quantizing and converting use when given
// none: King James Bible passages (from the part kjv-moe was trained on) and a few
// paragraphs of plain modern English, about 1,400 words.
func BuiltinCalibration() string { return quant.BuiltinCalibration }
