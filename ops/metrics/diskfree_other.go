//go:build !linux && !darwin

package metrics

// diskSpace is not implemented on this platform; the disk space gauges are
// not exported.
func diskSpace(dir string) (free, total uint64, ok bool) { return 0, 0, false }
