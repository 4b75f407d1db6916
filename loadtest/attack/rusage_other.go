//go:build !unix

package attack

type cpuTimes struct{ user, sys, wait float64 }

// readCPU is not available on this platform: the audit reports zero CPU.
func readCPU() cpuTimes { return cpuTimes{wait: runQueueWait()} }
