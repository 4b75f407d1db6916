package cputime

import (
	"runtime"
	"testing"
	"time"
)

func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

// TestClocksAdvanceWithWork: after spinning, each clock that the platform
// supports has advanced, and none goes backwards.
func TestClocksAdvanceWithWork(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p0, th0 := Process(), Thread()
	r0, _ := Threads(0)
	m0 := Machine()
	spin(50 * time.Millisecond)
	p1, th1 := Process(), Thread()
	r1, _ := Threads(0)
	m1 := Machine()
	if runtime.GOOS != "linux" {
		t.Skip("thread and machine clocks are Linux-only")
	}
	if p1.Total() <= p0.Total() {
		t.Errorf("process CPU did not advance: %v then %v", p0, p1)
	}
	if th1 <= th0 {
		t.Errorf("thread CPU did not advance: %v then %v", th0, th1)
	}
	if r0 < 0 || r1 <= r0 {
		t.Errorf("schedstat run time did not advance: %v then %v", r0, r1)
	}
	if m0.Total == 0 || m1.Total < m0.Total {
		t.Errorf("machine ticks: %+v then %+v", m0, m1)
	}
	if r, w := Threads(-12345); r != -1 || w != -1 {
		t.Errorf("a process that does not exist: %v, %v, want -1, -1", r, w)
	}
}
