package host

import (
	"context"
	"fmt"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/health/grpc_health_v1"
)

// A plugin that stops answering (stopped with SIGSTOP, stuck in the
// kernel, deadlocked in its gRPC server) would hold a run forever: its
// calls neither return nor fail. While it lives, vmflow asks it for its
// health every HealthInterval; when HealthFailures checks in a row get no
// answer within HealthTimeout, the plugin is killed and treated as
// crashed: the call fails, and its undos run in a fresh process.
var (
	HealthInterval = 5 * time.Second
	HealthTimeout  = 5 * time.Second
	HealthFailures = 3
)

// watch checks the plugin's health until it exits or is killed.
func (p *Process) watch(rpc goplugin.ClientProtocol) {
	gc, ok := rpc.(*goplugin.GRPCClient)
	if !ok || HealthInterval <= 0 {
		return
	}
	health := grpc_health_v1.NewHealthClient(gc.Conn)
	tick := time.NewTicker(HealthInterval)
	defer tick.Stop()
	failed := 0
	var silentSince time.Time
	for range tick.C {
		p.mu.Lock()
		killed := p.killed
		p.mu.Unlock()
		if killed || p.client.Exited() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), HealthTimeout)
		_, err := health.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: goplugin.GRPCServiceName})
		cancel()
		if err == nil {
			failed = 0
			continue
		}
		if failed == 0 {
			silentSince = time.Now().Add(-HealthTimeout)
		}
		failed++
		p.logger.Warn("plugin did not answer a health check", "path", p.Path, "failed", failed, "error", err)
		if failed < HealthFailures {
			continue
		}
		p.mu.Lock()
		if p.killed {
			p.mu.Unlock()
			return
		}
		p.hung = fmt.Sprintf("plugin %s stopped answering (no reply to %d health checks over %s); vmflow killed it",
			p.Path, failed, time.Since(silentSince).Round(time.Second))
		p.mu.Unlock()
		p.logger.Error(p.hung)
		// Its calls break with the connection; the engine restarts it
		// for the undos, as after a crash.
		p.killGroup()
		return
	}
}

// Gone reports whether the plugin can no longer answer: it exited, or the
// watchdog killed it as hung. The watchdog says so before it kills, so a
// call that breaks with the connection finds the plugin gone even before
// go-plugin has reaped the process (on a busy machine that can take a
// while, and an undo started in between went to the dead process).
func (p *Process) Gone() bool {
	p.mu.Lock()
	hung := p.hung != ""
	p.mu.Unlock()
	return hung || p.client.Exited()
}
