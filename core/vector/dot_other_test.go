//go:build !amd64

package vector

import "testing"

type kernel struct{ name string }

// kernels lists the kernel sets this machine can run: only the generic one.
func kernels() []kernel { return []kernel{{"generic"}} }

func useKernel(testing.TB, kernel) {}
