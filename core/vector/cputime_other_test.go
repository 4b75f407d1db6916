//go:build !linux

package vector

import "time"

// CPU time is not measured off Linux; CPU-time metrics then read zero.
func cpuTime() time.Duration   { return 0 }
func threadCPU() time.Duration { return 0 }
