// Package atomicfile writes small files so that a reader (or a restart
// after kill -9) sees the old content or the new, never a mix: the data
// goes to a temporary file that is synced, then renamed into place, and
// the directory is synced.
package atomicfile

import (
	"os"
	"path/filepath"
)

// WriteFile writes data to path with mode, atomically and durably.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	SyncDir(filepath.Dir(path))
	return nil
}

// SyncDir syncs a directory, so that a file created or renamed in it
// survives a crash. Errors are ignored: some file systems cannot.
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
