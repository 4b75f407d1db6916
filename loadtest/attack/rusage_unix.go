//go:build unix

package attack

import "syscall"

// cpuTimes is the process's CPU use so far. wait is the time its threads
// were runnable but waited for a CPU (run-queue delay), negative when the
// platform does not say.
type cpuTimes struct{ user, sys, wait float64 }

// readCPU is the process's CPU time so far (getrusage RUSAGE_SELF) and its
// run-queue delay.
func readCPU() cpuTimes {
	c := cpuTimes{wait: runQueueWait()}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return c
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	c.user, c.sys = tv(ru.Utime), tv(ru.Stime)
	return c
}
