//go:build !linux && !darwin

package core

import "errors"

// FilesystemSpace is not implemented on this platform: the disk guard needs
// MinFreeBytes 0, and the disk space gauges are not exported.
func FilesystemSpace(string) (free, total int64, err error) {
	return 0, 0, errors.New("measuring free disk space is not supported on this platform; set min_free_space to 0")
}
