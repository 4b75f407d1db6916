package loadtest

import "fmt"

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
	// as the total wait does. Measured on a 2-core host: about 0.3 at
	// load average 2, 0.7 at 4, 7 with a saturated server beside it.
	starvedRatio = 0.5
	starvedFloor = 0.01
)

// judge decides who limited the run and says why, in words an operator
// can act on. Requests that waited on the server (the pool at its cap)
// make it the server's run even if the generator was also late: a
// saturated server on the same host starves the generator too. Late sends
// of the generator's own are the generator's when it was CPU-bound or had
// the CPU and still fell behind, and the machine's when its threads
// waited for a CPU that something else was using.
func judge(res *Result) {
	au := &res.Audit
	au.Findings = nil
	au.LimitedBy = ""
	f := func(format string, args ...any) { au.Findings = append(au.Findings, fmt.Sprintf(format, args...)) }
	share := func(n int64) float64 {
		if res.Scheduled <= 0 {
			return 0
		}
		return float64(n) / float64(res.Scheduled)
	}
	cores := res.Generator.GOMAXPROCS
	if n := res.Generator.NumCPU; n > 0 && (cores <= 0 || n < cores) {
		cores = n
	}
	wall := res.DurationSeconds + res.WarmupSeconds
	own := au.LateSends - au.LateNoWorker // late for the generator's own reasons
	ownLate := share(own) > lateLimit || (au.DroppedSends > 0 && au.PoolExhausted == 0)
	// In-flight growth to half the cap is the server's too: the pool
	// grows one worker per on-time arrival that finds none free (one per
	// wake-up when the pacer is behind), so a generator stall cannot
	// grow it that far.
	grew := au.MaxWorkers >= 16 && au.PeakWorkers*2 >= au.MaxWorkers
	serverWait := au.PoolExhausted > 0 || share(au.LateNoWorker) > lateLimit || grew
	shortfall := !res.Interrupted && res.RequestedRate > 0 && res.AchievedRate < 0.95*res.RequestedRate
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
	if s := res.Setup; s.IndexPending > 0 {
		f("the server's index had not settled: %d preloaded memories were still waiting to be indexed when the load started (after %.0fs); recalls scanned them exactly, so read latency and server CPU are above the steady state",
			s.IndexPending, s.IndexSettleSeconds)
	}

	switch {
	case ownLate && cpuBusy:
		au.LimitedBy = LimitedByGenerator
		f("the GENERATOR limited this run: it was CPU-bound and could not send on time, so the figures understate what was asked of the server; give it more cores or split the load over machines (loadtest merge)")
	case serverWait || (shortfall && !ownLate):
		au.LimitedBy = LimitedByServer
		f("the SERVER limited this run: requests waited on it; it completed %.1f of %.1f requested operations/s and corrected latencies include the queueing", res.AchievedRate, res.RequestedRate)
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
