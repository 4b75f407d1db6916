//go:build unix

package loadtest

import "syscall"

type cpuTimes struct{ user, sys float64 }

// readCPU is the process's CPU time so far (getrusage RUSAGE_SELF).
func readCPU() cpuTimes {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return cpuTimes{}
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return cpuTimes{user: tv(ru.Utime), sys: tv(ru.Stime)}
}
