//go:build !linux

package loadtest

func runQueueWait() float64 { return -1 }
