// Package atomicfile replaces files so that a reader, or vmflow after a
// crash, finds the old content or the new one, never a mix: through a
// temporary file in the same directory, fsynced, renamed over the file,
// and the directory fsynced. (internal/cachefile is the same without the
// fsyncs, for files that only make a later run faster.)
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data, with permissions perm. The temporary
// file is named after pattern, as os.CreateTemp takes it ("": .NAME.*.tmp),
// so that its owner can tell one a killed writer left; a failed Write
// removes it.
func Write(path string, data []byte, perm os.FileMode, pattern string) error {
	dir := filepath.Dir(path)
	if pattern == "" {
		pattern = "." + filepath.Base(path) + ".*.tmp"
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, so that the names last made, renamed or
// removed in it survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
