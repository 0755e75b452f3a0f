//go:build !purego

package kernels

// Declarations of the macro test harness in neon_macros_arm64.s (see neon_macros_test.go).

//go:noescape
func macroSDOTA(d, n, m *[16]byte)

//go:noescape
func macroSDOTB(d, n, m *[16]byte)

//go:noescape
func macroUDOTA(d, n, m *[16]byte)

//go:noescape
func macroUDOTB(d, n, m *[16]byte)

//go:noescape
func macroSMULL8BA(d, n, m *[16]byte)

//go:noescape
func macroSMULL8BB(d, n, m *[16]byte)

//go:noescape
func macroSMULL216BA(d, n, m *[16]byte)

//go:noescape
func macroSMULL216BB(d, n, m *[16]byte)

//go:noescape
func macroSMLAL8BA(d, n, m *[16]byte)

//go:noescape
func macroSMLAL8BB(d, n, m *[16]byte)

//go:noescape
func macroSMLAL216BA(d, n, m *[16]byte)

//go:noescape
func macroSMLAL216BB(d, n, m *[16]byte)

//go:noescape
func macroSADALP8HA(d, n, m *[16]byte)

//go:noescape
func macroSADALP8HB(d, n, m *[16]byte)

//go:noescape
func macroSDOTEA(d, n, m *[16]byte)

//go:noescape
func macroSDOTEB(d, n, m *[16]byte)

//go:noescape
func macroSDOTEC(d, n, m *[16]byte)

//go:noescape
func macroSDOTED(d, n, m *[16]byte)

//go:noescape
func macroFCVTL4SA(d, n, m *[16]byte)

//go:noescape
func macroSCVTF4SA(d, n, m *[16]byte)

//go:noescape
func macroFMUL4SA(d, n, m *[16]byte)

//go:noescape
func macroFMUL4SE0A(d, n, m *[16]byte)

//go:noescape
func macroFCVTL4SB(d, n, m *[16]byte)

//go:noescape
func macroSCVTF4SB(d, n, m *[16]byte)

//go:noescape
func macroFMUL4SB(d, n, m *[16]byte)

//go:noescape
func macroFMUL4SE0B(d, n, m *[16]byte)

//go:noescape
func macroFMUL4SEA(d, n, m *[16]byte)

//go:noescape
func macroFMUL4SEB(d, n, m *[16]byte)

//go:noescape
func macroFMUL4SEC(d, n, m *[16]byte)
