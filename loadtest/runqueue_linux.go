package loadtest

import (
	"bytes"
	"os"
	"strconv"
)

// runQueueWait sums, over the process's threads, the time they were
// runnable but not running (the second field of
// /proc/self/task/*/schedstat, nanoseconds), in seconds; -1 if unknown.
// It tells a starved generator (another process took the CPU) from a busy
// one. Threads that exited take their share with them; Go rarely ends
// threads.
func runQueueWait() float64 {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return -1
	}
	var sum int64
	found := false
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/schedstat")
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
