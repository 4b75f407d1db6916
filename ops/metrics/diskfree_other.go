//go:build !linux && !darwin

package metrics

// diskSpace: this platform has no statfs here, so the disk space gauges are
// not exported.
func diskSpace(dir string) (free, total uint64, ok bool) { return 0, 0, false }
