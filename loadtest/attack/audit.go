package attack

import "fmt"

// Audit is the generator's account of itself.
type Audit struct {
	LateAfterMS float64 `json:"late_after_ms"`
	DropAfterMS float64 `json:"drop_after_ms"`
	// LateSends started more than late_after_ms after their intended time;
	// LateNoWorker of them waited for a free worker (the pool was at
	// max_workers), the rest were late because the generator's own
	// goroutines did not run in time: LateDispatch of them because the
	// pacer woke late, the others because a free worker did.
	LateSends     int64   `json:"late_sends"`
	LateNoWorker  int64   `json:"late_no_worker"`
	LateDispatch  int64   `json:"late_dispatch"`
	LateFraction  float64 `json:"late_fraction"`
	DroppedSends  int64   `json:"dropped_sends"`
	MaxWorkers    int     `json:"max_workers"`
	PeakWorkers   int     `json:"peak_workers"`
	PoolExhausted int64   `json:"pool_exhausted"`
	// SchedulingLag is the distribution of (actual − intended) send time.
	SchedulingLag HistSummary `json:"scheduling_lag"`
	CPUUserSec    float64     `json:"cpu_user_seconds"`
	CPUSystemSec  float64     `json:"cpu_system_seconds"`
	// CPUCores is (user+system)/wall: cores the process used on average.
	CPUCores float64 `json:"cpu_cores"`
	// CPUWaitSec is how long the process's threads were runnable but
	// waited for a CPU (Linux run-queue delay); nil where unknown.
	CPUWaitSec *float64 `json:"cpu_wait_seconds,omitempty"`
	// CPUIncludesServer is true when the server ran in the same process.
	CPUIncludesServer bool `json:"cpu_includes_server"`
	// LimitedBy is "server" when requests waited on the server,
	// "generator" when the generator could not offer the requested load
	// by itself (CPU-bound, or its scheduler fell behind), "machine" when
	// it was late for want of a CPU something else on the host took, and
	// "" when the load was offered as requested and the server kept up.
	LimitedBy string   `json:"limited_by"`
	Findings  []string `json:"findings"`
}

// Verdicts of Audit.LimitedBy.
const (
	LimitedByServer    = "server"
	LimitedByGenerator = "generator"
	LimitedByMachine   = "machine"
)

// Verdict thresholds.
const (
	// lateLimit is the share of late sends beyond which the load was not
	// offered as requested.
	lateLimit = 0.01
	// cpuBusyShare of the generator's cores in use makes it CPU-bound;
	// below cpuLowShare it had CPU to spare.
	cpuBusyShare = 0.8
	cpuLowShare  = 0.5
	// The generator was starved when its threads waited for a CPU at
	// least starvedRatio as long as they ran, and for at least
	// starvedFloor of the run. A runnable thread on a host with a free
	// core runs at once; the ratio does not grow with the request rate
	// as the total wait does. The threshold sits between a host that is
	// merely busy and one where a saturated process beside the generator
	// takes its CPU (docs/benchmarks.md, "Load generator ceiling").
	starvedRatio = 0.5
	starvedFloor = 0.01
)

// RunFacts is what Judge needs to know of a run besides its audit.
type RunFacts struct {
	// Scheduled arrivals of the measured phase.
	Scheduled int64
	// GOMAXPROCS and NumCPU of the generator; the smaller is its cores.
	GOMAXPROCS, NumCPU int
	// WallSeconds is the warm-up and the measured phase.
	WallSeconds   float64
	Interrupted   bool
	RequestedRate float64
	AchievedRate  float64
	// Notes are findings about the run's setup, listed before the verdict.
	Notes []string
}

// Judge decides who limited the run, sets au.LimitedBy and says why in
// au.Findings, in words an operator can act on. Requests that waited on
// the server (the pool at its cap) make it the server's run even if the
// generator was also late: a saturated server on the same host starves
// the generator too. Late sends of the generator's own are the
// generator's when it was CPU-bound or had the CPU and still fell behind,
// and the machine's when its threads waited for a CPU that something
// else was using.
func Judge(au *Audit, run RunFacts) {
	au.Findings = nil
	au.LimitedBy = ""
	f := func(format string, args ...any) { au.Findings = append(au.Findings, fmt.Sprintf(format, args...)) }
	share := func(n int64) float64 {
		if run.Scheduled <= 0 {
			return 0
		}
		return float64(n) / float64(run.Scheduled)
	}
	cores := run.GOMAXPROCS
	if n := run.NumCPU; n > 0 && (cores <= 0 || n < cores) {
		cores = n
	}
	wall := run.WallSeconds
	own := au.LateSends - au.LateNoWorker // late for the generator's own reasons
	ownLate := share(own) > lateLimit || (au.DroppedSends > 0 && au.PoolExhausted == 0)
	// In-flight growth to half the cap is the server's too: the pool
	// grows one worker per on-time arrival that finds none free (one per
	// wake-up when the pacer is behind), so a generator stall cannot
	// grow it that far.
	grew := au.MaxWorkers >= 16 && au.PeakWorkers*2 >= au.MaxWorkers
	serverWait := au.PoolExhausted > 0 || share(au.LateNoWorker) > lateLimit || grew
	shortfall := !run.Interrupted && run.RequestedRate > 0 && run.AchievedRate < 0.95*run.RequestedRate
	cpuBusy := !au.CPUIncludesServer && cores > 0 && au.CPUCores >= cpuBusyShare*float64(cores)
	cpuLow := cores > 0 && au.CPUCores < cpuLowShare*float64(cores)
	waitKnown := au.CPUWaitSec != nil && wall > 0
	starved := false
	if waitKnown {
		w := *au.CPUWaitSec
		starved = w >= starvedRatio*(au.CPUUserSec+au.CPUSystemSec) && w >= starvedFloor*wall
	}

	if au.DroppedSends > 0 {
		f("%d sends were dropped: they could not start within drop_after_ms = %v of their intended time", au.DroppedSends, au.DropAfterMS)
	}
	if au.LateFraction > lateLimit {
		f("%.2f%% of sends started more than %vms late (p99 scheduling lag %.2fms): %d waited for a worker at max_workers, %d were dispatched late by the pacer, %d waited for a free worker to run",
			au.LateFraction*100, au.LateAfterMS, au.SchedulingLag.P99MS, au.LateNoWorker, au.LateDispatch, max(own-au.LateDispatch, 0))
	}
	if au.PoolExhausted > 0 {
		f("in-flight requests reached max_workers = %d %d times: the server was not answering as fast as requests arrived (raise [generator] max_workers only if the server is known to be fine)",
			au.MaxWorkers, au.PoolExhausted)
	}
	if grew && au.PoolExhausted == 0 {
		f("in-flight requests grew to %d, of max_workers = %d: the server answered slower than requests arrived", au.PeakWorkers, au.MaxWorkers)
	}
	if cpuBusy {
		f("the generator used %.2f of its %d cores: it is CPU-bound", au.CPUCores, cores)
	}
	if starved {
		f("the process's threads waited %.2fs for a CPU while runnable, against %.2fs running: other work on this host competed for the cores",
			*au.CPUWaitSec, au.CPUUserSec+au.CPUSystemSec)
	}
	au.Findings = append(au.Findings, run.Notes...)

	switch {
	case ownLate && cpuBusy:
		au.LimitedBy = LimitedByGenerator
		f("the GENERATOR limited this run: it was CPU-bound and could not send on time, so the figures understate what was asked of the server; give it more cores or split the load over machines (loadtest merge)")
	case serverWait || (shortfall && !ownLate):
		au.LimitedBy = LimitedByServer
		f("the SERVER limited this run: requests waited on it; it completed %.1f of %.1f requested operations/s and corrected latencies include the queueing", run.AchievedRate, run.RequestedRate)
		if ownLate {
			f("%.2f%% of sends were also late for the generator's own reasons while it used %.2f cores: a server on the same host takes the CPU the generator needs; run the generator on another machine for clean figures",
				share(own)*100, au.CPUCores)
		}
	case ownLate && au.CPUIncludesServer:
		au.LimitedBy = LimitedByMachine
		f("MACHINE CONTENTION limited this run: the generator shares its process and cores with the embedded server (together %.2f of %d cores) and could not send on time; run the server separately (--target), and the generator on another machine", au.CPUCores, cores)
	case ownLate && (starved || (!waitKnown && cpuLow)):
		au.LimitedBy = LimitedByMachine
		f("MACHINE CONTENTION limited this run: sends were late while the generator itself used only %.2f of %d cores; something else on this host (the server, other jobs) took the CPU. Run the generator on another machine or give it cores of its own", au.CPUCores, cores)
	case ownLate:
		au.LimitedBy = LimitedByGenerator
		f("the GENERATOR limited this run: its scheduler did not send on time though it used %.2f of %d cores, was not kept off the CPU, and the server kept up; the figures understate what was asked of the server", au.CPUCores, cores)
	}
	if au.CPUIncludesServer {
		f("CPU figures include the embedded server (same process); use --target for the generator's own CPU")
	}
}
