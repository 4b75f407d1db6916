package attack

import (
	"syscall"
	"time"
)

// preciseSleep sleeps d with the kernel's resolution (tens of µs). Go's
// timers wake an idle process in whole milliseconds (epoll_wait takes
// milliseconds), which would make sub-millisecond gaps late by up to 1 ms.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil)
}
