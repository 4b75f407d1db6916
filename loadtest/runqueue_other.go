//go:build !linux

package loadtest

func runQueueWait() float64 { return -1 }

// RunQueueWait is unknown (-1) here: it reads Linux's per-thread schedstat.
func RunQueueWait(pid int) float64 { return -1 }
