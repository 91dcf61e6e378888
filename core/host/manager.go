package host

import (
	"bytes"
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
	// spares are processes started ahead of need (Prestart), each
	// taken by the first GetChecked of its binary and sum.
	spares []*spare
}

// spare is a start in progress or done, not yet claimed.
type spare struct {
	path string
	sum  []byte
	done chan struct{}
	p    *Process
	err  error
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
	so.once.Do(func() {
		if sp := m.takeSpare(path, so.sum); sp != nil {
			select {
			case <-sp.done:
			case <-ctx.Done():
				m.discard(sp)
				so.err = ctx.Err()
				return
			}
			if sp.err == nil {
				so.p = sp.p
				return
			}
			// A spare that failed is started again the usual way, so
			// that the error is this start's.
		}
		so.p, so.err = StartChecked(ctx, path, so.sum, m.Logger)
	})
	return so.p, so.err
}

// Prestart starts the binary at path (which must have the sha256 sum, nil
// for none, as for GetChecked) in the background, before anything asks
// for it: vmflow starts the plugins a task used last time while it loads
// the task file. The first GetChecked of the same path and sum takes the
// process, whatever its key; one nobody takes is stopped at Close. A
// guess that turns out wrong costs a start and changes nothing else.
func (m *Manager) Prestart(path string, sum []byte) {
	sp := &spare{path: path, sum: sum, done: make(chan struct{})}
	m.mu.Lock()
	m.spares = append(m.spares, sp)
	m.mu.Unlock()
	go func() {
		defer close(sp.done)
		sp.p, sp.err = StartChecked(context.Background(), path, sum, m.Logger)
	}()
}

// takeSpare removes and returns a spare of path and sum, or nil.
func (m *Manager) takeSpare(path string, sum []byte) *spare {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, sp := range m.spares {
		if sp.path == path && bytes.Equal(sp.sum, sum) {
			m.spares = append(m.spares[:i], m.spares[i+1:]...)
			return sp
		}
	}
	return nil
}

// discard stops a spare once its start is over.
func (m *Manager) discard(sp *spare) {
	go func() {
		<-sp.done
		if sp.p != nil {
			sp.p.Kill()
		}
	}()
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

// Close stops every plugin, and every spare nobody took once it started.
func (m *Manager) Close() {
	m.mu.Lock()
	spares := m.spares
	m.spares = nil
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, sp := range spares {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-sp.done
			if sp.p != nil {
				sp.p.Kill()
			}
		}()
	}
	for _, p := range m.Processes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Kill()
		}()
	}
	wg.Wait()
}
