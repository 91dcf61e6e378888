// Package fsx holds the file-system idioms vmflow's stores share.
package fsx

import (
	"errors"
	"io/fs"
	"os"
	"strings"
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

// SubDirs lists the names of dir's subdirectories, sorted; a missing dir
// has none (ReadDir). On an error it returns what it read before it.
func SubDirs(dir string) ([]string, error) {
	ents, err := ReadDir(dir)
	var names []string
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, err
}

// SafeName is s with every character other than an ASCII letter or digit,
// '-', '_' or '.' replaced by '_', for use in a file name, and whether s
// needed no replacement. With limit > 0 it stops once the name has limit
// bytes.
func SafeName(s string, limit int) (name string, clean bool) {
	var b strings.Builder
	clean = true
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
			clean = false
		}
		if limit > 0 && b.Len() >= limit {
			break
		}
	}
	return b.String(), clean
}
