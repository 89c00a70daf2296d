//go:build unix

package store

import "golang.org/x/sys/unix"

// freeSpace is the space an unprivileged user may still write on the file
// system of dir.
func freeSpace(dir string) (uint64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	return uint64(st.Bavail) * uint64(st.Bsize), true
}
