//go:build !unix

package core_test

import "time"

// processCPU is not measured on this platform; CPU figures read zero.
func processCPU() time.Duration { return 0 }
