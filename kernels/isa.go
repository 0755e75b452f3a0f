package kernels

import (
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/klauspost/cpuid/v2"
)

// ISA names one implementation path of the kernels. The path is chosen once at start-up
// from what the CPU reports (klauspost/cpuid) and can be forced, for tests and for users
// who want to compare, with MOLE_ISA=avx512|avxvnni|avx2|neon|generic or SetISA.
type ISA uint8

const (
	// Generic is the pure-Go twin of every kernel; it is always available and is the
	// reference the assembly paths are tested against.
	Generic ISA = iota
	// AVX2 uses VPMADDUBSW+VPMADDWD for int8 products.
	AVX2
	// AVXVNNI is AVX2 plus the VEX-encoded VPDPBUSD on ymm (Alder Lake and later, Zen 5).
	AVXVNNI
	// AVX512 is AVX-512 F/BW/VL plus VNNI: VPDPBUSD on zmm.
	AVX512
	// NEON is arm64 ASIMD, with SDOT when the CPU has the dot-product extension.
	NEON
	numISA
)

var isaNames = [numISA]string{"generic", "avx2", "avxvnni", "avx512", "neon"}

func (i ISA) String() string {
	if i < numISA {
		return isaNames[i]
	}
	return fmt.Sprintf("isa%d", uint8(i))
}

// ParseISA maps a name as accepted by MOLE_ISA to an ISA.
func ParseISA(s string) (ISA, error) {
	for i, n := range isaNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return ISA(i), nil
		}
	}
	return Generic, fmt.Errorf("unknown ISA %q (want one of %s)", s, strings.Join(isaNames[:], ", "))
}

// cpuHas reports whether this CPU (and this build) can run path i.
func cpuHas(i ISA) bool {
	if purego {
		return i == Generic
	}
	c := &cpuid.CPU
	switch i {
	case Generic:
		return true
	case AVX2:
		return runtime.GOARCH == "amd64" && c.Supports(cpuid.AVX2, cpuid.FMA3, cpuid.F16C, cpuid.BMI2)
	case AVXVNNI:
		return runtime.GOARCH == "amd64" && c.Supports(cpuid.AVX2, cpuid.FMA3, cpuid.F16C, cpuid.BMI2, cpuid.AVXVNNI)
	case AVX512:
		return runtime.GOARCH == "amd64" && c.Supports(cpuid.AVX2, cpuid.FMA3, cpuid.F16C, cpuid.BMI2,
			cpuid.AVX512F, cpuid.AVX512BW, cpuid.AVX512VL, cpuid.AVX512DQ, cpuid.AVX512VNNI)
	case NEON:
		return runtime.GOARCH == "arm64" // ASIMD is mandatory on arm64
	}
	return false
}

// HasDotProd reports whether the arm64 CPU has SDOT/UDOT (FEAT_DotProd); the NEON path
// uses widening multiplies without it.
func HasDotProd() bool {
	return !purego && runtime.GOARCH == "arm64" && cpuid.CPU.Supports(cpuid.ASIMDDP)
}

// Supported reports whether path i can run on this CPU and build.
func Supported(i ISA) bool { return cpuHas(i) }

// best is the fastest path this CPU supports.
func best() ISA {
	for _, i := range []ISA{AVX512, AVXVNNI, AVX2, NEON} {
		if cpuHas(i) {
			return i
		}
	}
	return Generic
}

// active is the path in use. It is written only at start-up and by SetISA (tests, CLI
// flags), never while kernels run.
var active = chooseISA(os.Getenv("MOLE_ISA"))

// ISAWarning is the warning produced when MOLE_ISA asked for a path this CPU lacks (or
// named none); empty otherwise. The CLI prints it.
var ISAWarning string

func chooseISA(env string) ISA {
	b := best()
	if env == "" {
		return b
	}
	want, err := ParseISA(env)
	if err != nil {
		ISAWarning = fmt.Sprintf("MOLE_ISA: %v; using %s", err, b)
		return b
	}
	if !cpuHas(want) {
		ISAWarning = fmt.Sprintf("MOLE_ISA=%s: this CPU or build lacks it; using %s", want, b)
		return b
	}
	return want
}

// Active returns the kernel path in use.
func Active() ISA { return active }

// SetISA switches the kernel path and returns the previous one. It fails, leaving the
// path unchanged, when the CPU lacks i. It must not be called while kernels run.
func SetISA(i ISA) (ISA, error) {
	prev := active
	if !cpuHas(i) {
		return prev, fmt.Errorf("kernels: %s is not supported on this CPU or build", i)
	}
	active = i
	return prev, nil
}

// CPUInfo describes the CPU and the kernel paths, for `mole info --cpu`.
func CPUInfo() string {
	c := &cpuid.CPU
	var b strings.Builder
	fmt.Fprintf(&b, "cpu: %s (%s/%s, family %d model %d)\n", c.BrandName, runtime.GOOS, runtime.GOARCH, c.Family, c.Model)
	fmt.Fprintf(&b, "cores: %d physical, %d logical reported; GOMAXPROCS %d\n", c.PhysicalCores, c.LogicalCores, runtime.GOMAXPROCS(0))
	fmt.Fprintf(&b, "caches: L1d %d KiB, L2 %d KiB, L3 %d KiB\n", c.Cache.L1D>>10, c.Cache.L2>>10, c.Cache.L3>>10)
	var feats []string
	for _, f := range []cpuid.FeatureID{cpuid.AVX2, cpuid.FMA3, cpuid.F16C, cpuid.AVX512F, cpuid.AVX512BW,
		cpuid.AVX512VL, cpuid.AVX512VNNI, cpuid.AVX512BF16, cpuid.AVXVNNI, cpuid.ASIMD, cpuid.ASIMDDP} {
		if c.Supports(f) {
			feats = append(feats, f.String())
		}
	}
	fmt.Fprintf(&b, "features: %s\n", strings.Join(feats, " "))
	var paths []string
	for i := Generic; i < numISA; i++ {
		if cpuHas(i) {
			paths = append(paths, i.String())
		}
	}
	fmt.Fprintf(&b, "kernel paths: %s; chosen: %s", strings.Join(paths, " "), active)
	if purego {
		b.WriteString(" (purego build: no assembly)")
	}
	if ISAWarning != "" {
		fmt.Fprintf(&b, "\nwarning: %s", ISAWarning)
	}
	return b.String()
}
