package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/vmflow/vmflow/core/sdk"
)

// vmflow runs a step again when a run killed during it is resumed. The
// stub changes its state file atomically under its lock, so an earlier
// attempt's change is either all in the file or not at all; claims
// (sdk.Request.Claim), written before the change, tell the next attempt
// of the same step of the same run which changes in the file are its own.
// What it did not claim is never touched.

func volumeClaim(name string) string   { return "volume " + name }
func defineClaim(name string) string   { return "vm " + name }
func startClaim(name string) string    { return "start " + name }
func shutdownClaim(name string) string { return "shutdown " + name }
func suspendClaim(name string) string  { return "suspend " + name }
func swapKey(a, b string) string       { return fmt.Sprintf("swap %s %s", a, b) }

// makeWay makes way for a new volume, under the state lock: one of that
// name that an earlier attempt of this run's step claimed is freed (it
// was made, whole, but never reported); any other is refused, as ever.
// Then it claims the name.
func (c *cluster) makeWay(r *sdk.Request, name string, cmds *commands) error {
	if v := c.volumeByName(name); v != nil {
		if !r.Claimed(volumeClaim(name), nil) {
			return c.mustBeNew(name)
		}
		cmds.add("pvesm", "free", v.VolID)
		cmds.comment("made by an interrupted attempt of this step")
		delete(c.Volumes, v.VolID)
	}
	return r.Claim(volumeClaim(name), nil)
}

// vmClaim is define's claim: the configuration it replaces ("" for a new
// VM).
type vmClaim struct {
	Previous string `json:"previous"`
}

// swapClaim is volume_swap's: a fingerprint of what each volume id held
// before the exchange. The exchange moves contents between the ids, so
// what each id holds now tells whether it happened.
type swapClaim struct {
	Name string `json:"name"`
	With string `json:"with"`
}

// swapSeen is what volume_swap's claim tells of the two volumes now.
type swapSeen int

const (
	swapUnclaimed swapSeen = iota // no claim tells: none, or both held the same
	swapAsFound                   // they hold what the step found
	swapExchanged                 // they hold it exchanged
	swapChanged                   // neither: something else changed them
)

// swapState compares a and b with the step's claim under key.
func swapState(r *sdk.Request, key string, a, b *volume) swapSeen {
	var earlier swapClaim
	if !r.Claimed(key, &earlier) || earlier.Name == earlier.With {
		return swapUnclaimed
	}
	switch ca, cb := contents(a), contents(b); {
	case ca == earlier.Name && cb == earlier.With:
		return swapAsFound
	case ca == earlier.With && cb == earlier.Name:
		return swapExchanged
	}
	return swapChanged
}

// contents is a fingerprint of what volume_swap exchanges between two
// volume ids.
func contents(v *volume) string {
	b, _ := json.Marshal(struct {
		Size, Used                 uint64
		Backing, FS, Label, Source string
		Files                      map[string]string
	}{v.Size, v.Used, v.Backing, v.FS, v.Label, v.Source, v.Files})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
