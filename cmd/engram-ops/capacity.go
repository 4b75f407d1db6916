package main

import (
	"fmt"
	"math"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/runbooks"
)

// capacityRunbook is where the formulas and coefficients are written down;
// a test checks the table there against capacityCoefficients.
const capacityRunbook = "scaling-and-capacity"

// capacityCoefficients are the calibrated constants of the plan, by the
// names the runbook's coefficient table uses.
var capacityCoefficients = map[string]float64{
	"record_bytes":          230,
	"change_bytes":          390,
	"incremental_share":     0.084,
	"remember_cpu_us":       220,
	"index_insert_cpu_us":   827,
	"recall_cpu_us":         800,
	"writes_per_fsync":      1.5,
	"index_node_bytes":      184,
	"memory_overhead_bytes": 160,
	"graph_bytes_per_node":  138,
	"disk_headroom":         1.5,
}

// capacityCmd is `engram-ops capacity plan`.
type capacityCmd struct {
	app *app

	memories       int64
	dimension      int
	writeRate      float64
	recallRate     float64
	retention      time.Duration
	snapshots      int
	derivedVectors bool
}

func newCapacityCmd(a *app) *capacityCmd { return &capacityCmd{app: a} }

func (c *capacityCmd) command() *cobra.Command {
	group := &cobra.Command{
		Use:     "capacity",
		Short:   "Estimate the resources a workload needs",
		Example: `  engram-ops capacity plan --memories 10000000 --dimension 768 --write-rate 200 --recall-rate 500 --retention 720h`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	long := `Estimate RAM, disk, IOPS, CPU and backup storage for a workload from the formulas and
coefficients of the scaling-and-capacity runbook (engram-ops runbook show
scaling-and-capacity), each coefficient calibrated against a measured benchmark
figure. The defaults of the configuration (block cache, memtables, hot tier,
gc_percent, changelog.retention, min_free_space) are assumed. An estimate is a
starting point: confirm it with engram-ops loadtest (runbook capacity-testing).

--output json prints {"inputs": {...}, "ram_bytes", "memory_limit_bytes",
"disk_bytes", "iops", "cpu_cores", "provision_cores", "backup_bytes"}.`
	if rb, err := runbooks.Get(capacityRunbook); err == nil {
		if sec, ok := rb.Section("Formulas"); ok {
			long += "\n\n" + sec
		}
	}
	plan := &cobra.Command{
		Use:   "plan",
		Short: "Estimate RAM, disk, IOPS, CPU and backup storage for a workload",
		Long:  long,
		Example: `  engram-ops capacity plan --memories 10000000 --dimension 768 --write-rate 200 --recall-rate 500 --retention 720h
  engram-ops capacity plan --memories 1000000 --dimension 384 --write-rate 50 --recall-rate 100 --retention 168h --output json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return c.plan() },
	}
	f := plan.Flags()
	f.Int64Var(&c.memories, "memories", 0, "memories stored (required)")
	f.IntVar(&c.dimension, "dimension", 768, "embedding dimension")
	f.Float64Var(&c.writeRate, "write-rate", 0, "remembers per second, sustained")
	f.Float64Var(&c.recallRate, "recall-rate", 0, "recalls per second, sustained")
	f.DurationVar(&c.retention, "retention", 7*24*time.Hour, "how far back a restore must reach (backup retention)")
	f.IntVar(&c.snapshots, "snapshots", 0, "snapshots kept (default: one a day over --retention)")
	f.BoolVar(&c.derivedVectors, "derived-vectors", false, "vectors come from the built-in embedder and are not stored")
	_ = plan.MarkFlagRequired("memories")
	group.AddCommand(plan)
	return group
}

// capacityPlan is the --output json shape of capacity plan.
type capacityPlan struct {
	Inputs struct {
		Memories       int64   `json:"memories"`
		Dimension      int     `json:"dimension"`
		WriteRate      float64 `json:"write_rate"`
		RecallRate     float64 `json:"recall_rate"`
		RetentionHours float64 `json:"retention_hours"`
		Snapshots      int     `json:"snapshots"`
		DerivedVectors bool    `json:"derived_vectors"`
	} `json:"inputs"`
	RAMBytes         int64   `json:"ram_bytes"`
	MemoryLimitBytes int64   `json:"memory_limit_bytes"`
	DiskBytes        int64   `json:"disk_bytes"`
	IOPS             float64 `json:"iops"`
	CPUCores         float64 `json:"cpu_cores"`
	ProvisionCores   float64 `json:"provision_cores"`
	BackupBytes      int64   `json:"backup_bytes"`
}

func (c *capacityCmd) plan() error {
	switch {
	case c.memories < 0:
		return usagef("--memories must not be negative")
	case c.dimension < 1 || c.dimension > config.Default().Limits.MaxDimension:
		return usagef("--dimension must be in 1..%d", config.Default().Limits.MaxDimension)
	case c.writeRate < 0 || c.recallRate < 0:
		return usagef("--write-rate and --recall-rate must not be negative")
	case c.retention < 0 || c.snapshots < 0:
		return usagef("--retention and --snapshots must not be negative")
	}
	p := computePlan(c, config.Default())
	a := c.app
	if a.global.output == "json" {
		return a.printJSON(p)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "workload\t%d memories × %d dimensions, %g writes/s, %g recalls/s, backups kept %s (%d snapshots)\n",
		p.Inputs.Memories, p.Inputs.Dimension, p.Inputs.WriteRate, p.Inputs.RecallRate, c.retention, p.Inputs.Snapshots)
	fmt.Fprintf(tw, "RAM\t%s (set server.memory_limit = \"%dMiB\")\n", iec(float64(p.RAMBytes)), (p.MemoryLimitBytes+1<<20-1)>>20)
	fmt.Fprintf(tw, "disk\t%s (with compaction headroom and the min_free_space reserve)\n", iec(float64(p.DiskBytes)))
	fmt.Fprintf(tw, "IOPS\t%.0f synced writes/s\n", p.IOPS)
	fmt.Fprintf(tw, "CPU\t%.2f cores busy; provision %.0f\n", p.CPUCores, p.ProvisionCores)
	fmt.Fprintf(tw, "backup storage\t%s\n", iec(float64(p.BackupBytes)))
	if err := tw.Flush(); err != nil {
		return err
	}
	if !a.global.quiet {
		fmt.Fprintf(a.stdout, "\nFormulas and the benchmark behind each coefficient: engram-ops runbook show %s\n", capacityRunbook)
	}
	return nil
}

// computePlan applies the runbook's formulas with cfg's defaults.
func computePlan(c *capacityCmd, cfg config.Config) capacityPlan {
	k := capacityCoefficients
	var p capacityPlan
	p.Inputs.Memories, p.Inputs.Dimension = c.memories, c.dimension
	p.Inputs.WriteRate, p.Inputs.RecallRate = c.writeRate, c.recallRate
	p.Inputs.RetentionHours = c.retention.Hours()
	p.Inputs.DerivedVectors = c.derivedVectors
	p.Inputs.Snapshots = c.snapshots
	if p.Inputs.Snapshots == 0 {
		p.Inputs.Snapshots = max(1, int(math.Ceil(c.retention.Hours()/24)))
	}
	n, d := float64(c.memories), float64(c.dimension)
	vecMem := 4 * d
	stored := 4*d + 3
	if c.derivedVectors {
		stored = 0
	}

	const memtables = 2 * 32 << 20
	const blockCache = 64 << 20
	live := n*(vecMem+k["index_node_bytes"]+k["memory_overhead_bytes"]) + blockCache + memtables + float64(cfg.Tiers.HotCapacity)
	ram := live * (1 + float64(cfg.Server.GCPercent)/100)
	p.MemoryLimitBytes = int64(ram)
	p.RAMBytes = int64(ram * 1.25)

	logRetention := cfg.ChangeLog.Retention.Seconds()
	data := n*(k["record_bytes"]+stored+k["graph_bytes_per_node"]) + c.writeRate*logRetention*k["change_bytes"]
	p.DiskBytes = int64(data*k["disk_headroom"]) + int64(cfg.MinFreeSpace)

	p.IOPS = c.writeRate / k["writes_per_fsync"]
	p.CPUCores = (c.writeRate*(k["remember_cpu_us"]+k["index_insert_cpu_us"]) + c.recallRate*k["recall_cpu_us"]) / 1e6
	p.ProvisionCores = math.Max(1, math.Ceil(2*p.CPUCores))

	full := n * (k["record_bytes"] + stored + k["graph_bytes_per_node"])
	shipped := c.writeRate * c.retention.Seconds() * (k["change_bytes"] + stored)
	p.BackupBytes = int64(full + shipped + float64(p.Inputs.Snapshots-1)*k["incremental_share"]*full)
	return p
}
