package host

import (
	"context"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// Manager starts plugin binaries on demand and stops them all at Close.
// A binary is started once per distinct key (its path plus the config it
// is given), so two plugin blocks with the same source and config share a
// process, and the same source with two configs gets two.
type Manager struct {
	Logger hclog.Logger

	mu    sync.Mutex
	procs map[string]*startOnce
}

type startOnce struct {
	sum  []byte // the sha256 the binary must have (nil: none)
	once sync.Once
	p    *Process
	err  error
}

// NewManager returns a manager that logs plugin output to logger.
func NewManager(logger hclog.Logger) *Manager {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Manager{Logger: logger, procs: map[string]*startOnce{}}
}

// Get returns the running process for (path, key), starting it if needed.
// Concurrent callers for the same key share one start.
func (m *Manager) Get(ctx context.Context, path, key string) (*Process, error) {
	return m.GetChecked(ctx, path, key, nil)
}

// GetChecked is Get for a binary that must have the sha256 sum (see
// StartChecked); a restart after a crash checks it again.
func (m *Manager) GetChecked(ctx context.Context, path, key string, sum []byte) (*Process, error) {
	m.mu.Lock()
	if m.procs == nil {
		m.procs = map[string]*startOnce{}
	}
	k := path + "\x00" + key
	so, ok := m.procs[k]
	if !ok {
		so = &startOnce{sum: sum}
		m.procs[k] = so
	}
	m.mu.Unlock()
	so.once.Do(func() { so.p, so.err = StartChecked(ctx, path, so.sum, m.Logger) })
	return so.p, so.err
}

// Restart replaces a crashed process for (path, key) with a fresh one, so
// that the undos of steps it completed can still run.
func (m *Manager) Restart(ctx context.Context, path, key string) (*Process, error) {
	m.mu.Lock()
	k := path + "\x00" + key
	old := m.procs[k]
	so := &startOnce{}
	if old != nil {
		so.sum = old.sum
	}
	m.procs[k] = so
	m.mu.Unlock()
	if old != nil && old.p != nil {
		old.p.Kill()
	}
	so.once.Do(func() { so.p, so.err = StartChecked(ctx, path, so.sum, m.Logger) })
	return so.p, so.err
}

// Processes lists the started processes.
func (m *Manager) Processes() []*Process {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Process
	for _, so := range m.procs {
		if so.p != nil {
			out = append(out, so.p)
		}
	}
	return out
}

// Close stops every plugin.
func (m *Manager) Close() {
	var wg sync.WaitGroup
	for _, p := range m.Processes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Kill()
		}()
	}
	wg.Wait()
}
