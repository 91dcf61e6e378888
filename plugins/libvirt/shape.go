package main

import (
	"context"
	"crypto/sha256"
	"regexp"
	"strings"

	libvirt "github.com/digitalocean/go-libvirt"
)

// define asks libvirtd to check each domain document against its RelaxNG
// schema (VIR_DOMAIN_DEFINE_VALIDATE): without it libvirt drops what it
// does not know without a word, and with it a mistake in the document is
// an early, clear error. But the check costs libvirtd ~10 ms of CPU per
// define (the whole of domain.rng, every time), 3-4x the define itself,
// and define's documents differ from one VM to the next only in values
// the plugin puts in fixed places: names, UUIDs, MACs, paths.
//
// So the check is made once per document shape: the document with each of
// those values replaced by a placeholder. When libvirtd has accepted a
// document, another of the same shape is valid too, provided each of its
// values is of a kind the schema accepts wherever the plugin puts it: the
// schema checks such a value only against its datatype's pattern (below,
// each one the same as or narrower than the schema's). A value outside
// those kinds (a control character, a relative path, a MAC written with
// dashes) makes the document go through the check as before, and so does
// any document of a new shape; libvirtd's error is then the one it always
// was. Everything else in the document (the domain type, memory, vCPUs,
// disk formats, firmware, network, PCI devices, which elements there are)
// is part of the shape as it is.
//
// libvirtd's schema is fixed while it runs; the shapes it accepted are
// forgotten when the connection is dialled again (connLocked).

var (
	// basictypes.rng: UUID, uniMacAddr.
	schemaUUID = regexp.MustCompile(`^(?:[a-fA-F0-9]{32}|[a-fA-F0-9]{8}-(?:[a-fA-F0-9]{4}-){3}[a-fA-F0-9]{12})$`)
	schemaMAC  = regexp.MustCompile(`^[a-fA-F0-9][02468aAcCeE](?::[a-fA-F0-9]{2}){5}$`)
)

// plainText: not empty, no control character (the schema's patterns
// exclude newlines; XML 1.0 cannot carry most others).
func plainText(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == 0xfffd {
			return false
		}
	}
	return true
}

// absFilePath is basictypes.rng's absFilePath, narrowed: "/" and at least
// one more character, plainText.
func absFilePath(s string) bool { return len(s) > 1 && strings.HasPrefix(s, "/") && plainText(s) }

// docShape is the shape of the document domainXML builds from s, and
// whether every value it leaves out is of a kind the schema accepts where
// it goes. Values that are not set ("") stay "": whether an element is
// there at all is part of the shape.
func docShape(s defineSpec) (string, bool) {
	ok := plainText(s.name) && schemaUUID.MatchString(s.uuid) && schemaMAC.MatchString(s.mac) &&
		absFilePath(s.boot) && (s.varDisk == "" || absFilePath(s.varDisk)) &&
		(s.kernel == "" || absFilePath(s.kernel)) && (s.initrd == "" || absFilePath(s.initrd)) &&
		(s.cmdline == "" || plainText(s.cmdline)) && (s.consoleLog == "" || absFilePath(s.consoleLog))
	if !ok {
		return "", false
	}
	p := s
	p.name, p.uuid, p.mac, p.boot = "name", "00000000-0000-4000-8000-000000000000", "52:54:00:00:00:00", "/boot"
	set := func(v *string, placeholder string) {
		if *v != "" {
			*v = placeholder
		}
	}
	set(&p.varDisk, "/var")
	set(&p.kernel, "/kernel")
	set(&p.initrd, "/initrd")
	set(&p.cmdline, "cmdline")
	set(&p.consoleLog, "/console.log")
	doc, err := domainXML(p)
	if err != nil {
		return "", false
	}
	sum := sha256.Sum256([]byte(doc))
	return string(sum[:]), true
}

// shapeCheck is one shape's check by libvirtd: done is closed when it is
// over, and valid says whether libvirtd accepted the document.
type shapeCheck struct {
	done  chan struct{}
	valid bool
}

// defineFlags is the flags to define s's document with: validation, unless
// libvirtd has accepted a document of the same shape on this connection.
// While another define checks the same shape, it waits for its answer.
// finish must be called with define's error when validation was asked.
func (d *driver) defineFlags(ctx context.Context, s defineSpec) (flags libvirt.DomainDefineFlags, finish func(error)) {
	noop := func(error) {}
	shape, ok := docShape(s)
	if !ok {
		return libvirt.DomainDefineValidate, noop
	}
	for {
		d.mu.Lock()
		if d.shapes == nil {
			d.shapes = map[string]*shapeCheck{}
		}
		c := d.shapes[shape]
		if c == nil {
			c = &shapeCheck{done: make(chan struct{})}
			d.shapes[shape] = c
			shapes := d.shapes
			d.mu.Unlock()
			return libvirt.DomainDefineValidate, func(err error) {
				d.mu.Lock()
				c.valid = err == nil
				if !c.valid && shapes[shape] == c {
					delete(shapes, shape) // the next define checks it again
				}
				d.mu.Unlock()
				close(c.done)
			}
		}
		d.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			return libvirt.DomainDefineValidate, noop
		}
		d.mu.Lock()
		valid := c.valid
		d.mu.Unlock()
		if valid {
			return 0, noop
		}
		// That document was refused (for its own values, perhaps): check
		// this one, or wait for whoever checks it now.
	}
}
