// Package engine binds a task to its plugins, checks every step against
// the schema its plugin declares, and runs the steps as a graph: independent
// steps at the same time, outputs flowing to later steps, undos in reverse
// on failure, each transition journaled.
package engine

import (
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/vmflow/vmflow/core/config"
	"github.com/vmflow/vmflow/core/host"
	"github.com/vmflow/vmflow/core/journal"
	"github.com/vmflow/vmflow/core/protocol"
	"github.com/vmflow/vmflow/core/sdk"
)

// Engine prepares and runs the tasks of one project.
type Engine struct {
	Project  *config.Project
	Plugins  *host.Manager
	Finder   *host.Finder
	StateDir string
	Logger   hclog.Logger
	// PluginLogger logs what plugins report while they run (their log
	// events, which the event stream shows as the step's lines too);
	// nil: Logger. vmflow gives it the logger that prints on the
	// terminal with -v only, so a plugin's error is not printed twice.
	PluginLogger hclog.Logger
	// Trust decides which plugin binaries may run (the lock file); nil
	// runs any binary found.
	Trust *host.Trust
	// Key seals the sensitive values of the journals the engine writes
	// (nil: a run with sensitive values cannot be journaled).
	Key *journal.Key
	// InProcess serves plugin sources from this process instead of a
	// binary (source name → plugin). Tests and embedders use it.
	InProcess map[string]*sdk.Plugin

	mu         sync.Mutex
	instances  map[*config.PluginDecl]*instanceOnce
	configured map[*host.Process]*configureOnce
	builtins   map[*config.File]*PluginInstance
}

type instanceOnce struct {
	once  sync.Once
	p     *PluginInstance
	diags hcl.Diagnostics
}

type configureOnce struct {
	once  sync.Once
	diags protocol.Diagnostics
	err   error
}

// New returns an engine for a loaded project.
func New(proj *config.Project, finder *host.Finder, plugins *host.Manager, stateDir string, logger hclog.Logger) *Engine {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Engine{
		Project: proj, Finder: finder, Plugins: plugins, StateDir: stateDir, Logger: logger,
		instances: map[*config.PluginDecl]*instanceOnce{}, configured: map[*host.Process]*configureOnce{},
		builtins: map[*config.File]*PluginInstance{},
	}
}
