package migrate

import (
	"context"
	"fmt"
	"time"
)

// PlanReport is the source's size and an estimated duration.
type PlanReport struct {
	Objects          []Object `json:"objects"`
	Records          int64    `json:"records"`
	Bytes            int64    `json:"bytes,omitempty"`
	SampleRecords    int64    `json:"sample_records"`
	SampleSeconds    float64  `json:"sample_seconds"`
	RecordsPerSecond float64  `json:"records_per_second"`
	EstimatedSeconds float64  `json:"estimated_seconds"`
}

// Plan counts the source and measures mapping and writing its first sample
// records into scratch (an engine on a temporary directory), then estimates
// the whole run's duration at the measured rate. The estimate is for a
// data-directory migration; a server target adds its HTTP cost.
func Plan(ctx context.Context, src Source, m *Mapping, scratch Sink, sample int64) (*PlanReport, error) {
	if sample <= 0 {
		sample = 5000
	}
	rep := &PlanReport{Objects: m.Objects()}
	for _, o := range rep.Objects {
		if o.Count > 0 {
			rep.Records += o.Count
		}
	}
	if s, ok := src.(Sizer); ok {
		n, err := s.SizeBytes()
		if err != nil {
			return nil, err
		}
		rep.Bytes = n
	}
	start := time.Now()
	sum, err := Run(ctx, Options{Source: src, SourceName: "migrate-plan-sample", Mapping: m, Sink: scratch, MaxRejects: -1, Limit: sample})
	if err != nil {
		return nil, fmt.Errorf("measure a sample: %w", err)
	}
	rep.SampleRecords = sum.Records
	rep.SampleSeconds = time.Since(start).Seconds()
	if rep.SampleRecords > 0 && rep.SampleSeconds > 0 {
		rep.RecordsPerSecond = float64(rep.SampleRecords) / rep.SampleSeconds
		rep.EstimatedSeconds = float64(rep.Records) / rep.RecordsPerSecond
	}
	return rep, nil
}
