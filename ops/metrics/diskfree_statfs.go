//go:build linux || darwin

package metrics

import "syscall"

// diskSpace returns the bytes available to unprivileged users and the total
// size of the filesystem holding dir. ok is false when it cannot be read.
func diskSpace(dir string) (free, total uint64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, 0, false
	}
	bs := uint64(st.Bsize)
	return uint64(st.Bavail) * bs, uint64(st.Blocks) * bs, true
}
