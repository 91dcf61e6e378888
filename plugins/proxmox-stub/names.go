package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The rules for names and sizes are the libvirt plugin's, so that task
// files carry over; a VM name must in addition be a DNS name, as Proxmox
// requires.

// namePattern: a letter or digit, then letters, digits, '.', '_' or '-',
// at most 128 characters, never "..".
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// NamePatternDoc is how the name rule reads in docs and errors.
const NamePatternDoc = "a letter or digit, then letters, digits, '.', '_' or '-' (at most 128, no '..')"

func checkName(what, name string) error {
	if !namePattern.MatchString(name) || strings.Contains(name, "..") {
		return fmt.Errorf("invalid %s name %q: use %s", what, name, NamePatternDoc)
	}
	return nil
}

// dnsName is Proxmox's rule for a VM's name (its "dns-name" format): labels
// of letters, digits and '-', not starting or ending with '-', joined by
// dots.
var dnsName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)

// VMNameDoc is how the VM name rule reads in docs and errors.
const VMNameDoc = "a DNS name, as Proxmox requires: letters, digits and '-' in dot-separated labels that neither start nor end with '-' (at most 128)"

func checkVMName(name string) error {
	if len(name) > 128 || !dnsName.MatchString(name) {
		return fmt.Errorf("invalid VM name %q: use %s", name, VMNameDoc)
	}
	return nil
}

// snapshotPattern is Proxmox's rule: a letter, then letters, digits, '_'
// or '-', at most 40; "current" is reserved.
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
// GiB ("100").
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

// formatSize renders bytes the way Proxmox's commands take sizes (10G,
// 512M); sizes that are no whole number of MiB in K.
func formatSize(b uint64) string {
	switch {
	case b%(1<<40) == 0 && b >= 1<<40:
		return fmt.Sprintf("%dT", b>>40)
	case b%(1<<30) == 0 && b >= 1<<30:
		return fmt.Sprintf("%dG", b>>30)
	case b%(1<<20) == 0:
		return fmt.Sprintf("%dM", b>>20)
	}
	return fmt.Sprintf("%dK", (b+1023)>>10)
}

// shellQuote quotes a word for a logged command line, so that it can be
// pasted into a shell on the Proxmox node.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// command renders a command line with each word quoted as needed.
func command(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shellQuote(w)
	}
	return strings.Join(q, " ")
}
