//go:build !unix

package loadtest

type cpuTimes struct{ user, sys float64 }

// readCPU is not available on this platform: the audit reports zero CPU.
func readCPU() cpuTimes { return cpuTimes{} }
