package node

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
)

// ErrRepoPermissions is returned (wrapped) when the repo directory is open
// to other users and cannot be tightened.
var ErrRepoPermissions = errors.New("repo directory is accessible by group or others")

// secureRepo makes sure no other user of the machine can read the repo
// (its key, its token, the pebble files of its private records): a repo
// directory that exists with group or other permissions is tightened to
// 0700, or, if that fails, refused with the command that fixes it. A repo
// that does not exist yet is left to whoever creates it (with 0700).
func secureRepo(dir string, log *slog.Logger) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("node: repo %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("node: repo %s is not a directory", dir)
	}
	mode := fi.Mode().Perm()
	if mode&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("node: %w: %s has mode %04o, so other users can read its files; run: chmod 700 %s (%v)", ErrRepoPermissions, dir, mode, dir, err)
	}
	log.Warn("repo was accessible by other users: tightened to 0700", "repo", dir, "was", fmt.Sprintf("%04o", mode))
	return nil
}
