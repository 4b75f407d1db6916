//go:build !amd64

package vector

func dotKernel(a, b []float32) float32 { return dotGeneric(a, b) }

// dot4 returns the dot products of q with a, b, c and d, each of which has
// at least len(q) components; each is bit-identical to Dot's.
func dot4(q, a, b, c, d []float32) (float32, float32, float32, float32) {
	return dot4Generic(q, a, b, c, d)
}

func dotInt8Kernel(a, b []int8) int32 { return dotInt8Generic(a, b) }
