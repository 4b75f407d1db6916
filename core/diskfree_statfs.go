//go:build linux || darwin

package core

import "golang.org/x/sys/unix"

// FilesystemSpace returns the bytes an unprivileged process may still write
// on the filesystem holding path, and that filesystem's size.
func FilesystemSpace(path string) (free, total int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, err
	}
	bs := int64(st.Bsize)
	return int64(st.Bavail) * bs, int64(st.Blocks) * bs, nil
}
