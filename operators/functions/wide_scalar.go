//go:build !goexperiment.simd || !amd64

package functions

// Without GOEXPERIMENT=simd (or off amd64) the float loops have no wide
// forms: wide_simd.go.

func arithFloatsWide(op byte, res, a, b []float64) int { return 0 }

func cmpFloatsWide(op cmpOp, xs, ys []float64) (uint64, int) { return 0, 0 }

func patchWordWide(res, a []float64, take uint64) bool { return false }

func arithPatchWide(op byte, res, a, b, x []float64, take []uint64) int { return 0 }

func patch2Wide(res, a []float64, ta []uint64, b []float64, tb []uint64) int { return 0 }
