//go:build linux || darwin

package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// hostFilesystem measures the filesystem holding path: bytes an
// unprivileged process may write, its size, and free and total inodes.
func hostFilesystem(path string) (fsStats, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fsStats{}, err
	}
	bs := int64(st.Bsize)
	return fsStats{FreeBytes: int64(st.Bavail) * bs, TotalBytes: int64(st.Blocks) * bs,
		FreeInodes: uint64(st.Ffree), TotalInodes: uint64(st.Files)}, nil
}

// hostOpenFileLimit is this process's soft and hard RLIMIT_NOFILE, which a
// server started from the same shell inherits.
func hostOpenFileLimit() (soft, hard uint64, err error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, err
	}
	return uint64(rl.Cur), uint64(rl.Max), nil
}

// hostLockHolder returns the PID of the process holding the POSIX lock on
// file (the storage engine's LOCK), 0 when none does. /proc/locks also
// shows a lock this process holds; where it is missing, F_GETLK answers
// for other processes.
func hostLockHolder(file string) (int, error) {
	var st unix.Stat_t
	if err := unix.Stat(file, &st); err != nil {
		return 0, err
	}
	if f, err := os.Open("/proc/locks"); err == nil {
		defer f.Close()
		dev := fmt.Sprintf("%02x:%02x:%d", unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)), st.Ino)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 6 || fields[1] == "->" || fields[5] != dev {
				continue
			}
			if pid, err := strconv.Atoi(fields[4]); err == nil {
				return pid, nil
			}
		}
		if sc.Err() == nil {
			return 0, nil
		}
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil {
		return 0, err
	}
	if lk.Type == unix.F_UNLCK {
		return 0, nil
	}
	return int(lk.Pid), nil
}

// processName is the command line of pid, "" when unknown.
func processName(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// fileOwner is the owner's user id of an os.FileInfo, -1 when unknown.
func fileOwner(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// accessible reports whether this process may read, write and enter dir.
func accessible(dir string) error {
	return unix.Access(dir, unix.R_OK|unix.W_OK|unix.X_OK)
}
