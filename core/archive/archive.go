// Package archive reads and writes vmflow's backup archives.
//
// An archive is a tar stream compressed with zstd. Its first member is
// MANIFEST.json, which names every other member with its size, sha256 and
// mode; beside the archive, <archive>.sha256 holds the sha256 of the whole
// file in sha256sum's format, written last, so an archive without one is
// incomplete. `zstd -dc x.tar.zst | tar -t` and `sha256sum -c x.tar.zst.sha256`
// read both.
//
// The manifest comes first but holds the members' sums, which are known
// only once the members have been read. So that each source is read once,
// Create reserves room at the start of the file, streams the members
// after it as an ordinary zstd frame, then writes the manifest into the
// reserved room as a frame of its own made of raw (stored) blocks: a raw
// frame's length depends only on its content's length, and the manifest's
// length is known before the sums are (a sum is always 64 hex digits).
// zstd decodes concatenated frames as one stream, and tar entries are
// whole 512-byte blocks, so the two frames read back as one tar stream.
//
// Create writes an archive and its checksum file; Verify checks both;
// Extract checks, then writes the members into a directory; ReadManifest
// reads the manifest alone; Remove deletes an archive and what its making
// left. Every error names the archive, and the member when there is one.
package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

const (
	// Format is the manifest's format field.
	Format = "vmflow-backup/1"
	// ManifestName is the first member's name.
	ManifestName = "MANIFEST.json"
	// Ext ends an archive's file name.
	Ext = ".tar.zst"
	// SumExt ends the name of the checksum file beside an archive.
	SumExt = ".sha256"

	// maxManifest bounds how much of a manifest is read into memory.
	maxManifest = 64 << 20
	copyBuf     = 1 << 20
	// progressEvery spaces progress reports out.
	progressEvery = 200 * time.Millisecond
)

// Manifest is MANIFEST.json.
type Manifest struct {
	Format   string            `json:"format"`
	Created  string            `json:"created"` // RFC 3339
	Metadata map[string]string `json:"metadata"`
	Members  []Member          `json:"members"`
}

// Member is the manifest's entry for one member.
type Member struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Mode is the permission bits in octal, e.g. "0640".
	Mode string `json:"mode"`
}

// Names returns the member names, in the manifest's order.
func (m *Manifest) Names() []string {
	names := make([]string, 0, len(m.Members))
	for _, mi := range m.Members {
		names = append(names, mi.Name)
	}
	return names
}

// Progress is told how far a long read or write has got: done bytes of
// total, under a label ("archiving", "verifying", "checking",
// "extracting"). Calls come at most every 200ms, and once at the end.
type Progress func(done, total int64, label string)

// CheckName accepts relative, clean, slash-separated member names that
// stay below the directory they are extracted into.
func CheckName(name string) error {
	switch {
	case name == "" || name == ".":
		return errors.New("member name is empty")
	case strings.ContainsRune(name, 0):
		return errors.New("member name holds a NUL byte")
	case strings.HasPrefix(name, "/"):
		return errors.New("member name must be relative, not absolute")
	case name == ManifestName:
		return fmt.Errorf("%s is reserved for the archive's manifest", ManifestName)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return errors.New(`member name must not contain ".."`)
		}
	}
	if path.Clean(name) != name {
		return fmt.Errorf("member name must be a clean path (%q)", path.Clean(name))
	}
	return nil
}

// progress reports bytes done, at most every progressEvery.
type progress struct {
	report Progress
	label  string
	total  int64
	done   int64
	last   time.Time
}

// newProgress returns nil, which reports nothing, when report is nil.
func newProgress(report Progress, label string, total int64) *progress {
	if report == nil {
		return nil
	}
	return &progress{report: report, label: label, total: total}
}

func (p *progress) add(n int64) {
	if p == nil {
		return
	}
	p.done += n
	if now := time.Now(); now.Sub(p.last) >= progressEvery || p.done == p.total {
		p.last = now
		p.report(p.done, p.total, p.label)
	}
}

// countingReader reports what passes through it as progress.
type countingReader struct {
	r io.Reader
	p *progress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.p.add(int64(n))
	return n, err
}

// pump copies src to dst until EOF, checking ctx between chunks.
func pump(ctx context.Context, dst io.Writer, src io.Reader, buf []byte, p *progress) (int64, error) {
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
			p.add(int64(n))
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
