package loadtest

import "github.com/engram-ops/engram-ops/loadtest/attack"

// ThreadTimes is attack.ThreadTimes: the CPU time process pid's threads
// ran and waited for a CPU, in seconds (-1, -1 if unknown).
func ThreadTimes(pid int) (running, waiting float64) { return attack.ThreadTimes(pid) }
