//go:build unix

package cputime

import (
	"syscall"
	"time"
)

// Process is this process's CPU time so far (getrusage RUSAGE_SELF); zero
// if the kernel does not say.
func Process() Usage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return Usage{}
	}
	return Usage{User: time.Duration(ru.Utime.Nano()), System: time.Duration(ru.Stime.Nano())}
}
