// Package cputime reads CPU time: this process's (getrusage), the calling
// thread's, per-thread run and run-queue times of any process (Linux
// schedstat) and the machine's tick counters (/proc/stat). The load
// generator's self-audit and the benchmarks use it to tell a busy process
// from one starved by others. Where the platform does not say, the
// functions return the documented "unknown" values instead of failing.
package cputime

import "time"

// Usage is a process's CPU time so far.
type Usage struct {
	User, System time.Duration
}

// Total is user plus system time.
func (u Usage) Total() time.Duration { return u.User + u.System }

// Ticks are the machine's CPU tick counters (USER_HZ units) from /proc/stat:
// steal, idle (idle and waiting for I/O) and the total of all states.
type Ticks struct {
	Steal, Idle, Total uint64
}

// TicksPerSecond is USER_HZ on Linux, the unit of Ticks.
const TicksPerSecond = 100
