package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Extract checks the archive at path against its checksum file, then
// writes its members into dir, an existing directory, checking each one's
// size and sha256 against the manifest. Nothing is written from a file
// whose sum differs, members never replace files already there, and on
// any error Extract removes the files and directories it made. Members
// get their recorded modes; directories it makes for them are 0700.
func Extract(ctx context.Context, path, dir string, report Progress) (m *Manifest, err error) {
	var wrote, madeDirs []string
	defer func() {
		if err == nil {
			return
		}
		for _, f := range wrote {
			os.Remove(filepath.Join(dir, f))
		}
		for i := len(madeDirs) - 1; i >= 0; i-- {
			os.Remove(filepath.Join(dir, madeDirs[i]))
		}
	}()

	// The whole file first: nothing is written from a damaged archive.
	want, err := readSidecar(path)
	if err != nil {
		return nil, err
	}
	f, fi, err := open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	got, err := hashFile(ctx, path, newProgress(report, "checking", fi.Size()))
	if err != nil {
		return nil, err
	}
	if got != want {
		return nil, sidecarMismatch(path, got, want)
	}

	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	dec, err := newDecoder(&countingReader{f, newProgress(report, "extracting", fi.Size())})
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	start := func(m *Manifest) error {
		for _, mi := range m.Members {
			if _, err := root.Lstat(filepath.FromSlash(mi.Name)); err == nil {
				return fmt.Errorf("archive %s: member %q: %s already exists", path, mi.Name, filepath.Join(dir, filepath.FromSlash(mi.Name)))
			}
		}
		return nil
	}
	open := func(mi Member) (io.WriteCloser, error) {
		rel := filepath.FromSlash(mi.Name)
		made, err := makeParents(root, dir, rel)
		madeDirs = append(madeDirs, made...)
		if err != nil {
			return nil, err
		}
		out, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		wrote = append(wrote, rel)
		mode, _ := parseMode(mi.Mode)
		return &extracted{File: out, root: root, rel: rel, mode: mode}, nil
	}
	return walk(ctx, dec, path, start, open)
}

// makeParents makes the missing directories above rel, outermost first,
// and returns those it made.
func makeParents(root *os.Root, dir, rel string) (made []string, err error) {
	var parents []string
	for d := filepath.Dir(rel); d != "."; d = filepath.Dir(d) {
		parents = append([]string{d}, parents...)
	}
	for _, d := range parents {
		fi, err := root.Stat(d)
		if errors.Is(err, fs.ErrNotExist) {
			if err := root.Mkdir(d, 0o700); err != nil {
				return made, err
			}
			made = append(made, d)
			continue
		}
		if err != nil {
			return made, err
		}
		if !fi.IsDir() {
			return made, fmt.Errorf("%s is not a directory", filepath.Join(dir, d))
		}
	}
	return made, nil
}

// extracted is a member being written: closing it syncs it and gives it
// its mode.
type extracted struct {
	*os.File
	root *os.Root
	rel  string
	mode os.FileMode
}

func (e *extracted) Close() error {
	err := e.Sync()
	if cerr := e.File.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = e.root.Chmod(e.rel, e.mode)
	}
	return err
}
