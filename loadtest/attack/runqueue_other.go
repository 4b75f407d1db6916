//go:build !linux

package attack

func runQueueWait() float64 { return -1 }

// ThreadTimes is unknown (-1, -1) here: it reads Linux's per-thread schedstat.
func ThreadTimes(pid int) (running, waiting float64) { return -1, -1 }
