// Package cachefile writes vmflow's cache files (the list cache, the task
// index, the plugins a command line started): things that only make a
// later run faster, so they are written without fsync, and a reader sees
// the old content or the new one, never a mix.
package cachefile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data through a temporary file (0600) in its
// directory, made (0700) if missing. Its error is for callers that care:
// a cache that cannot be written only makes the next run slower.
func Write(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
