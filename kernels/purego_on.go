//go:build purego || !(amd64 || arm64)

package kernels

// purego is true when the build has no assembly: the purego tag, or an architecture
// without kernels. Every kernel then runs its generic twin.
const purego = true
