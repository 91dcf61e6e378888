// Package builtin holds the actions vmflow runs in its own process, under
// the plugin name "builtin": exec runs a local command, terminal runs one
// attached to the user's terminal, the record actions keep machine
// records in vmflow's state directory, assert stops a run whose
// condition fails, authorized_keys gathers SSH public keys, password
// asks for login passwords and hashes them, the archive actions make and
// read backups (the format is core/archive's), temp_dir makes a scratch
// directory and remove removes files.
package builtin

import (
	"context"
	"path/filepath"
	"sync"
	"time"

	"github.com/vmflow/vmflow/core/sdk"
)

// state is what Configure hands the built-in actions.
type state struct {
	mu       sync.Mutex
	stateDir string
}

func (s *state) dir() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stateDir
}

// timeouts are the built-in actions' default step timeouts. A local
// command (exec, terminal) and an assert have none: they take as long as
// they take, unless the step sets timeout. ssh-agent, or a disk, that
// stops answering does not hold a run forever.
var timeouts = map[string]time.Duration{
	"authorized_keys": time.Minute,
	"record_write":    time.Minute, "record_read": time.Minute, "record_delete": time.Minute, "record_list": time.Minute,
	"archive_create": 2 * time.Hour, "archive_verify": 2 * time.Hour, "archive_extract": 2 * time.Hour, "archive_list": 10 * time.Minute,
	"temp_dir": time.Minute, "remove": 30 * time.Minute,
}

// New returns the built-in plugin. env is the environment commands start
// with (the process environment and the task file's .env).
func New(env map[string]string) *sdk.Plugin {
	st := &state{}
	actions := []*sdk.Action{execAction(env), terminalAction(env), assertAction(), keysAction(env), passwordAction()}
	actions = append(actions, recordActions(st)...)
	actions = append(actions, archiveActions(st)...)
	actions = append(actions, fileActions(st)...)
	for _, a := range actions {
		a.Timeout = timeouts[a.Name]
	}
	return &sdk.Plugin{
		Name:        "builtin",
		Version:     "1",
		Description: "Actions built into vmflow.",
		Configure: func(ctx context.Context, r *sdk.Request) error {
			st.mu.Lock()
			defer st.mu.Unlock()
			st.stateDir = r.Env.StateDir
			if st.stateDir != "" && !filepath.IsAbs(st.stateDir) {
				if abs, err := filepath.Abs(st.stateDir); err == nil {
					st.stateDir = abs
				}
			}
			return nil
		},
		Actions: actions,
	}
}
