package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/vmflow/vmflow/core/claims"
)

// Claims make an action safe to run again.
//
// vmflow may call an action's Run again for the same run and step: when a
// run is resumed (vmflow resume) after vmflow was killed during that step,
// the step runs again from the start, and the earlier attempt may have
// half-done its work (a volume created but not filled, a definition
// written, an exchange done but not reported). Before Run creates or
// changes something, it claims it:
//
//	if exists {
//		if !r.Claimed("volume "+name, nil) {
//			return fmt.Errorf("volume %q already exists", name) // not ours: never touch it
//		}
//		remove(name) // our own leftover
//	}
//	if err := r.Claim("volume "+name, nil); err != nil {
//		return err
//	}
//	create(name)
//
// A claim is durable (fsynced) before Claim returns, and belongs to one
// step of one run: another run, or another step, never sees it. vmflow
// removes a run's claims when the run can no longer be resumed (it
// succeeded, or it was rolled back).

// Claim records durably that this attempt of this step is about to create
// or change what key names ("volume demo-var"), with optional data (any
// JSON-encodable value, nil for none) that a later attempt reads back
// with Claimed: what was there before, inode numbers, ids. Claiming a key
// again replaces its data. Claims belong to a step of a run: outside one
// (Validate, Plan, a call without a run id) nothing can run again, and
// Claim does nothing.
func (r *Request) Claim(key string, data any) error {
	if r.RunID == "" || r.Step == "" {
		return nil
	}
	dir, err := r.claimDir()
	if err != nil {
		return err
	}
	return claims.Write(dir, key, data)
}

// Claimed reports whether an attempt of this step of this run (an earlier
// one, interrupted, or this one) claimed key, and decodes the claim's data
// into into when into is not nil. A claim whose data cannot be decoded
// into into still counts as claimed; into is then left alone and the
// problem logged.
func (r *Request) Claimed(key string, into any) bool {
	dir, err := r.claimDir()
	if err != nil {
		return false
	}
	c, ok, err := claims.Read(dir, key)
	if err != nil {
		r.Logger().Warn("reading a claim", "key", key, "error", err)
		return ok
	}
	if !ok {
		return false
	}
	if into != nil && len(c.Data) > 0 {
		if err := json.Unmarshal(c.Data, into); err != nil {
			r.Logger().Warn("decoding a claim's data", "key", key, "error", err)
		}
	}
	return true
}

// ClaimedKeys lists the keys that attempts of this step of this run
// claimed and that start with prefix: for what an earlier attempt made
// under a name this attempt does not make again (a file named after the
// time), so that it can still be found and removed.
func (r *Request) ClaimedKeys(prefix string) []string {
	dir, err := r.claimDir()
	if err != nil {
		return nil
	}
	cs, err := claims.List(dir)
	if err != nil {
		r.Logger().Warn("listing claims", "error", err)
	}
	var keys []string
	for _, c := range cs {
		if strings.HasPrefix(c.Key, prefix) {
			keys = append(keys, c.Key)
		}
	}
	return keys
}

// Interrupted reports, in an Undo, that the step's Run never completed:
// vmflow was killed during it, and vmflow resume --undo now rolls the run
// back. Outputs are then all null; undo what the step's claims say this
// run made, and nothing else. vmflow calls such an Undo only when the
// step's attempts claimed something.
func (r *Request) Interrupted() bool { return r.interrupted }

func (r *Request) claimDir() (string, error) {
	switch {
	case r.RunID == "" || r.Step == "":
		return "", errors.New("sdk: claims belong to a step of a run")
	case r.Env.StateDir == "":
		return "", fmt.Errorf("sdk: vmflow gave plugin %s no state directory for its claims", r.plugin)
	}
	return claims.Dir(r.Env.StateDir, r.plugin, r.RunID, r.Step), nil
}

func (r *Request) hasClaims() bool {
	dir, err := r.claimDir()
	return err == nil && claims.Any(dir)
}

// Changed reports, in an Undo, whether the step's Run made the change
// its bool output flag says it made (started, stopped, suspended): for a
// Run that completed, the flag; for an interrupted one, whether it
// claimed key before making the change.
func (r *Request) Changed(flag, key string) bool {
	if r.interrupted {
		return r.Claimed(key, nil)
	}
	v := r.Output(flag)
	return !v.IsNull() && v.True()
}
