//go:build !linux && !darwin

package core

import "errors"

// FilesystemSpace has no statfs to call on this platform and returns an
// error: the disk guard then needs MinFreeBytes 0 (Open says so), and the
// disk space gauges are left out of the metrics.
func FilesystemSpace(string) (free, total int64, err error) {
	return 0, 0, errors.New("measuring free disk space is not supported on this platform; set min_free_space to 0")
}
