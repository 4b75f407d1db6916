package cputime

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// Thread is the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID); the
// caller locks its OS thread. Zero if unknown.
func Thread() time.Duration {
	const clockThreadCPUTime = 3 // CLOCK_THREAD_CPUTIME_ID
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}

// Threads sums, over the threads of process pid (0: this process), the
// time they ran on a CPU and the time they were runnable but not running
// (the first two fields of /proc/PID/task/*/schedstat), in seconds; -1, -1
// if unknown. Both come from the scheduler's clock, not the timer tick, so
// they count work done with interrupts off too. Threads that exited take
// their share with them; Go rarely ends threads.
func Threads(pid int) (running, waiting float64) {
	proc := "/proc/self"
	if pid != 0 {
		proc = "/proc/" + strconv.Itoa(pid)
	}
	tasks, err := os.ReadDir(proc + "/task")
	if err != nil {
		return -1, -1
	}
	var run, wait int64
	found := false
	for _, t := range tasks {
		b, err := os.ReadFile(proc + "/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread exited, or schedstat is not built in
		}
		f := bytes.Fields(b)
		if len(f) < 2 {
			continue
		}
		r, err1 := strconv.ParseInt(string(f[0]), 10, 64)
		w, err2 := strconv.ParseInt(string(f[1]), 10, 64)
		if err1 == nil && err2 == nil {
			run += r
			wait += w
			found = true
		}
	}
	if !found {
		return -1, -1
	}
	return float64(run) / 1e9, float64(wait) / 1e9
}

// Machine reads the machine's tick counters from /proc/stat's first line;
// zeros when unknown.
func Machine() Ticks {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return Ticks{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return Ticks{}
	}
	// user nice system idle iowait irq softirq steal; guest time is
	// already counted in user.
	var t Ticks
	for i, s := range f[1:9] {
		n, _ := strconv.ParseUint(s, 10, 64)
		t.Total += n
		switch i {
		case 3, 4:
			t.Idle += n
		case 7:
			t.Steal = n
		}
	}
	return t
}
