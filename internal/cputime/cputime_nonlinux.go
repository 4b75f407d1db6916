//go:build !linux

package cputime

import "time"

// Thread is unknown (zero) off Linux.
func Thread() time.Duration { return 0 }

// Threads is unknown (-1, -1) off Linux: it reads Linux's per-thread
// schedstat.
func Threads(pid int) (running, waiting float64) { return -1, -1 }

// Machine is unknown (zeros) off Linux.
func Machine() Ticks { return Ticks{} }
