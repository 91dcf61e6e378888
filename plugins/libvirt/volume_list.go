package main

import (
	"context"
	"sort"

	"github.com/vmflow/vmflow/core/sdk"
	"github.com/vmflow/vmflow/plugins/hypervisor"
)

// volumeList lists vmflow's pool: what destroy and purge delete
// when no record says which generation of a VM's base volume exists.
func (d *driver) volumeList(ctx context.Context, r *sdk.Request) error {
	match, err := hypervisor.MatchNames(r.String("pattern"))
	if err != nil {
		return sdk.ArgError("pattern", "%v", err)
	}
	conn, pool, err := d.pool()
	if err != nil {
		return err
	}
	vols, _, err := conn.StoragePoolListAllVolumes(pool, 1, 0)
	if err != nil {
		return err
	}
	names := []string{}
	for _, v := range vols {
		if match(r.String("prefix"), v.Name) {
			names = append(names, v.Name)
		}
	}
	sort.Strings(names)
	return r.Set("names", names)
}
