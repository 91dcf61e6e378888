package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// namePattern is the one rule for domain and volume names: a letter or
// digit, then letters, digits, '.', '_' or '-', at most 128 characters, and
// never "..". No '/', whitespace or shell metacharacters can get through,
// so a name is always safe as a file name and on a command line.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// NamePatternDoc is how the rule reads in docs and errors.
const NamePatternDoc = "a letter or digit, then letters, digits, '.', '_' or '-' (at most 128, no '..')"

func checkName(what, name string) error {
	if !namePattern.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("invalid %s name %q: use %s", what, name, NamePatternDoc)
	}
	return nil
}

// snapshotPattern follows Proxmox's rules so that task files carry over
// between backends: a letter, then letters, digits, '_' or '-', at most 40;
// "current" is reserved.
var snapshotPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,39}$`)

// SnapshotPatternDoc is how the snapshot rule reads in docs and errors.
const SnapshotPatternDoc = "a letter, then letters, digits, '_' or '-' (at most 40; \"current\" is reserved)"

func checkSnapshotName(name string) error {
	if !snapshotPattern.MatchString(name) || name == "current" {
		return fmt.Errorf("invalid snapshot name %q: use %s", name, SnapshotPatternDoc)
	}
	return nil
}

var sizePattern = regexp.MustCompile(`^([1-9][0-9]*)([MGT]?)$`)

// parseSize reads a disk size: "512M", "30G", "2T", or a bare number of
// GiB ("100"). Anything else is an error.
func parseSize(s string) (uint64, error) {
	m := sizePattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid size %q: write a whole number with M, G or T (512M, 30G), or a bare number of GiB (100)", s)
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %v", s, err)
	}
	shift := map[string]uint{"M": 20, "G": 30, "": 30, "T": 40}[m[2]]
	if n > (1<<63)>>shift {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return n << shift, nil
}

// formatSize renders bytes the way parseSize reads them, when exact.
func formatSize(b uint64) string {
	switch {
	case b%(1<<40) == 0 && b >= 1<<40:
		return fmt.Sprintf("%dT", b>>40)
	case b%(1<<30) == 0:
		return fmt.Sprintf("%dG", b>>30)
	case b%(1<<20) == 0:
		return fmt.Sprintf("%dM", b>>20)
	}
	return fmt.Sprintf("%d bytes", b)
}
