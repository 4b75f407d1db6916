package attack

import "github.com/engram-ops/engram-ops/internal/cputime"

// cpuTimes is the process's CPU use so far, in seconds. wait is the time
// its threads were runnable but waited for a CPU (run-queue delay),
// negative when the platform does not say.
type cpuTimes struct{ user, sys, wait float64 }

func readCPU() cpuTimes {
	u := cputime.Process()
	_, wait := cputime.Threads(0)
	return cpuTimes{user: u.User.Seconds(), sys: u.System.Seconds(), wait: wait}
}
