package faults

// The tasks under test, what each needs set up first, and the default
// sample of cases.

type taskSpec struct {
	name string
	// setup: commands (task and arguments) run first, in a fresh state
	// dir; each must succeed.
	setup [][]string
	// args: the task's command line.
	args []string
	// vms: the VMs the case purges at the end (with any other name the
	// state holds); made: the one the task makes (the purge mode purges
	// it before running the task again).
	vms  []string
	made string
	// commit: the task's commit points (`commit = true` in tasks.hcl):
	// once one has completed, the run only goes forward. The intended
	// ones are listed here; any other step tasks.hcl marks is added.
	commit []string
	// sample: the default cases, as target/point/mode.
	sample []string
}

func image() []string { return []string{"--var", "image=" + imageFile} }

func createK() []string { return append([]string{"create", "k"}, image()...) }

// allTasks lists them (built once imageFile is known).
func allTasks() []*taskSpec {
	return []*taskSpec{
		{
			name: "create",
			args: createK(),
			vms:  []string{"k"}, made: "k",
			sample: []string{
				// §3.1: the plugin killed after it defined the VM.
				"plugin/change-vm/machine/define/rerun",
				"plugin/started-vm/machine/define/undo",
				"plugin/change-vm/var/resume",
				"vmflow/change-vm/machine/define/resume",
				"vmflow/claim-vm/var/undo",
				"vmflow/change-record/purge",
				// §3.5: killed at run_done, the claims of a succeeded run stay.
				"vmflow/run_done/rerun",
			},
		},
		{
			name:  "upgrade",
			setup: [][]string{createK()},
			args:  []string{"upgrade", "k"},
			vms:   []string{"k"},
			// The record says generation+1 from save on: the run may only go
			// forward.
			commit: []string{"save"},
			sample: []string{
				// §3.2: killed in the cleanup, after the commit point.
				"vmflow/done-old/undo",
				"vmflow/change-swap[boot]/undo",
				"vmflow/change-stop/resume",
				"vmflow/done-save/rerun",
				"plugin/change-swap[boot]/rerun",
				"plugin/change-old/undo",
				"plugin/change-overlay/resume",
			},
		},
		{
			name:  "clone",
			setup: [][]string{append([]string{"create", "src"}, image()...), {"stop", "src"}},
			args:  []string{"clone", "src", "dst"},
			vms:   []string{"src", "dst"}, made: "dst",
			sample: []string{
				// §3.1: dst-base.1 orphaned when the plugin dies in var.
				"plugin/change-copy[var]/undo",
				"plugin/change-copy[base.1]/rerun",
				"vmflow/change-identity/resume",
				"vmflow/change-vm/define/rerun",
				"vmflow/change-copy[var]/purge",
			},
		},
		{
			name:  "backup",
			setup: [][]string{createK()},
			args:  []string{"backup", "k"},
			vms:   []string{"k"},
			sample: []string{
				// §3.5: an empty tmp/backup-* after a kill in pause, then --undo.
				"vmflow/change-pause/undo",
				"vmflow/change-tmp/undo",
				"plugin/change-export[var.qcow2]/resume",
				"vmflow/change-archive/rerun",
				"plugin/change-resume/undo",
				// §3.6: vmflow … backup k | head -1.
				"pipe/stdout/-",
			},
		},
		{
			name:   "restore-backup",
			setup:  [][]string{createK(), {"backup", "k"}},
			args:   []string{"restore-backup", "k"},
			vms:    []string{"k"},
			commit: []string{"old/undefine"},
			sample: []string{
				// §3.3: rolled back with the VM gone.
				"vmflow/done-old/volumes/undo",
				// §3.5: tmp/extract-* left after a kill in extract, then resume.
				"vmflow/change-extract/resume",
				"vmflow/change-old/undefine/undo",
				"plugin/change-vm/define/rerun",
				"plugin/change-var/undo",
				"vmflow/change-record/rerun",
			},
		},
		{
			name:  "recreate",
			setup: [][]string{createK(), {"destroy", "k"}},
			args:  []string{"recreate", "k"},
			vms:   []string{"k"},
			sample: []string{
				"vmflow/change-vm/var/undo",
				"plugin/change-vm/machine/define/resume",
				"plugin/change-vm/boot/undo",
				"vmflow/started-vm/machine/start/start/rerun",
			},
		},
		{
			name:  "resize-var",
			setup: [][]string{createK(), {"stop", "k"}},
			args:  []string{"resize-var", "k", "20G"},
			vms:   []string{"k"},
			sample: []string{
				"vmflow/change-resize/undo",
				"plugin/change-resize/rerun",
				"vmflow/change-save/resume",
				"plugin/change-save/undo",
				"pipe/stderr/-",
			},
		},
	}
}

// changing maps the actions that change the state dir to where their
// changes go: a step of one gets a change point (and a claim point when
// it claims in the clean run).
var changing = func() map[string][]string {
	m := map[string][]string{}
	for _, a := range []string{"volume_create", "volume_overlay", "volume_resize", "volume_delete", "volumes_delete",
		"volume_copy", "volume_import", "volume_edit", "volume_swap", "define", "undefine", "start", "shutdown",
		"destroy", "reboot", "suspend", "resume", "snapshot_create", "snapshot_revert", "snapshot_delete"} {
		m["hypervisor."+a] = []string{"proxmox-stub/cluster.json"}
	}
	// An export writes a file (in tmp/ for backup) and changes nothing in
	// the cluster.
	m["hypervisor.volume_export"] = []string{"tmp", "proxmox-stub/cluster.json"}
	m["builtin.record_write"] = []string{"machines"}
	m["builtin.record_delete"] = []string{"machines"}
	m["builtin.temp_dir"] = []string{"tmp"}
	m["builtin.archive_extract"] = []string{"tmp"}
	m["builtin.archive_create"] = []string{"backups"}
	m["builtin.remove"] = []string{"tmp"}
	return m
}()
