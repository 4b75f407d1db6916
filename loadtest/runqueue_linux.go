package loadtest

import (
	"bytes"
	"os"
	"strconv"
)

// runQueueWait is RunQueueWait of this process. It tells a starved
// generator (another process took the CPU) from a busy one.
func runQueueWait() float64 { return RunQueueWait(0) }

// RunQueueWait sums, over the threads of process pid (0: this process), the
// time they were runnable but not running (the second field of
// /proc/PID/task/*/schedstat, nanoseconds), in seconds; -1 if unknown.
// Threads that exited take their share with them; Go rarely ends threads.
func RunQueueWait(pid int) float64 {
	proc := "/proc/self"
	if pid != 0 {
		proc = "/proc/" + strconv.Itoa(pid)
	}
	tasks, err := os.ReadDir(proc + "/task")
	if err != nil {
		return -1
	}
	var sum int64
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
		if n, err := strconv.ParseInt(string(f[1]), 10, 64); err == nil {
			sum += n
			found = true
		}
	}
	if !found {
		return -1
	}
	return float64(sum) / 1e9
}
