package sdk

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/vmflow/vmflow/core/protocol"
)

// Serve runs the plugin until vmflow stops it. Call it from main.
func Serve(p *Plugin) {
	impl, err := InProcess(p)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vmflow plugin:", err)
		os.Exit(1)
	}
	if os.Getenv(protocol.Handshake.MagicCookieKey) != protocol.Handshake.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "%s is a vmflow plugin (%s %s); vmflow starts it when a task uses it.\n"+
			"Put it on the plugin path as vmflow-plugin-%s and run `vmflow plugins` to see its actions.\n",
			os.Args[0], p.Name, p.Version, p.Name)
		os.Exit(1)
	}
	watchParent()
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig:  protocol.Handshake,
		VersionedPlugins: protocol.PluginSets(impl),
		GRPCServer:       goplugin.DefaultGRPCServer,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: p.Name, Level: logLevel(), Output: os.Stderr, JSONFormat: true,
		}),
	})
}

// watchParent makes sure the plugin never outlives vmflow. vmflow hands
// every plugin the read end of a pipe (the lifeline); when vmflow exits,
// however it exits, the kernel closes the write end and the read returns.
// Without a lifeline, the parent pid is polled instead.
func watchParent() {
	exit := func() {
		// Give in-flight calls a moment to see their cancelled contexts.
		time.Sleep(100 * time.Millisecond)
		os.Exit(2)
	}
	if fd, err := strconv.Atoi(os.Getenv(protocol.LifelineEnv)); err == nil && fd > 2 {
		f := os.NewFile(uintptr(fd), "lifeline")
		go func() {
			_, _ = io.Copy(io.Discard, f)
			exit()
		}()
		return
	}
	ppid := os.Getppid()
	go func() {
		for range time.Tick(500 * time.Millisecond) {
			if os.Getppid() != ppid {
				exit()
			}
		}
	}()
}

// logLevel is the level vmflow asks for (debug with vmflow -v), else info.
var logLevel = sync.OnceValue(func() hclog.Level {
	if l := hclog.LevelFromString(os.Getenv(protocol.LogLevelEnv)); l != hclog.NoLevel {
		return l
	}
	return hclog.Info
})
