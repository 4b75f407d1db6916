package attack

import (
	"bytes"
	"os"
	"strconv"
)

// runQueueWait is how long this process's threads waited for a CPU. It
// tells a starved generator (another process took the CPU) from a busy one.
func runQueueWait() float64 {
	_, waiting := ThreadTimes(0)
	return waiting
}

// ThreadTimes sums, over the threads of process pid (0: this process), the
// time they ran on a CPU and the time they were runnable but not running
// (the first two fields of /proc/PID/task/*/schedstat, nanoseconds), in
// seconds; -1, -1 if unknown. Both are measured by the scheduler's clock,
// not sampled by the timer tick, so they count work done with interrupts
// off too. Threads that exited take their share with them; Go rarely ends
// threads.
func ThreadTimes(pid int) (running, waiting float64) {
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
