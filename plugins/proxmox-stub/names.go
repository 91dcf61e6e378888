package main

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// The rules for volume names, snapshot names and sizes are the hypervisor
// contract's (plugins/hypervisor), so that task files carry over; a VM
// name must instead be a DNS name, as Proxmox requires.

// dnsName is Proxmox's rule for a VM's name (its "dns-name" format): labels
// of letters, digits and '-', not starting or ending with '-', joined by
// dots.
var dnsName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)

// VMNameDoc is how the VM name rule reads in docs and errors.
const VMNameDoc = "a DNS name, as Proxmox requires: letters, digits and '-' in dot-separated labels that neither start nor end with '-' (at most 128)"

// vmName is the VM name rule, for the hypervisor contract.
var vmName = hypervisor.NameRule{Doc: VMNameDoc, Check: checkVMName}

func checkVMName(name string) error {
	if len(name) > 128 || !dnsName.MatchString(name) {
		return fmt.Errorf("invalid VM name %q: use %s", name, VMNameDoc)
	}
	return nil
}

// formatSize renders bytes the way Proxmox's commands take sizes (10G,
// 512M): as hypervisor.FormatSize does for a whole number of MiB, else in
// K, rounded up.
func formatSize(b uint64) string {
	switch {
	case b == 0:
		return "0M"
	case b%(1<<20) != 0:
		return fmt.Sprintf("%dK", (b+1023)>>10)
	}
	return hypervisor.FormatSize(b)
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
