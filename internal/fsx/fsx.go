// Package fsx holds the file-system idioms vmflow's stores share.
package fsx

import (
	"errors"
	"io/fs"
	"os"
)

// ReadDir is os.ReadDir for a directory that may not exist yet (a state
// directory's journal, claims or records before the first run): a
// missing one has no entries. Any other error is returned.
func ReadDir(dir string) ([]os.DirEntry, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return ents, err
}
