package faults

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vmflow/vmflow/core/claims"
)

// A watcher reports, through inotify, each change a run makes to the
// state directory (a record, the stub's cluster, tmp/, backups/) and each
// claim a step writes (claims/<plugin>/<run>/<step>/), so that a kill can
// land right after a step's change and before the step reports it.

type change struct {
	path      string // relative to the state dir
	claimStep string // a claim: the directory of the step that wrote it (stepDir)
}

type watcher struct {
	fd    int
	root  string
	on    func(change)
	mu    sync.Mutex
	paths map[int]string // watch descriptor → relative dir
	done  chan struct{}
	// stopping: close was called.
	stopping atomic.Bool
}

const watchMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_CLOSE_WRITE | unix.IN_DELETE

func watch(root string, on func(change)) (*watcher, error) {
	// A blocking descriptor read by a goroutine on its own thread: the
	// kill that follows a change goes out as soon as the kernel wakes it,
	// without a trip through Go's poller.
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	w := &watcher{fd: fd, root: root, on: on, paths: map[int]string{}, done: make(chan struct{})}
	w.add("", false)
	go w.loop()
	return w, nil
}

// add watches a directory and, recursively, what is in it already; with
// report, what it finds counts as new.
func (w *watcher) add(rel string, report bool) {
	if ignored(rel) {
		return
	}
	wd, err := unix.InotifyAddWatch(w.fd, filepath.Join(w.root, rel), watchMask)
	if err != nil {
		return
	}
	w.mu.Lock()
	w.paths[wd] = rel
	w.mu.Unlock()
	ents, _ := os.ReadDir(filepath.Join(w.root, rel))
	for _, e := range ents {
		p := filepath.Join(rel, e.Name())
		if e.IsDir() {
			if report {
				w.report(p, true)
			}
			w.add(p, report)
		} else if report {
			w.report(p, false)
		}
	}
}

// ignored: what a run writes that is not a change of state: its journal,
// logs and locks.
func ignored(rel string) bool {
	first, _, _ := strings.Cut(rel, string(filepath.Separator))
	return first == "runs" || first == "locks"
}

// containerDirs hold what steps make; making one is not a change.
var containerDirs = map[string]bool{"tmp": true, "machines": true, "backups": true, "proxmox-stub": true, "libvirt": true}

func (w *watcher) report(rel string, dir bool) {
	base := filepath.Base(rel)
	if ignored(rel) || strings.HasPrefix(base, ".") || strings.HasSuffix(base, ".lock") {
		return
	}
	parts := strings.Split(rel, string(filepath.Separator))
	if dir && len(parts) <= 2 && containerDirs[base] {
		// Where changes go (tmp/, machines/proxmox-stub/…), made once:
		// not a step's own change.
		return
	}
	if parts[0] == "claims" {
		// claims/<plugin>/<run>/<step>/<key>: a claim file.
		if len(parts) == 5 && !dir {
			w.on(change{path: rel, claimStep: parts[3]})
		}
		return
	}
	w.on(change{path: rel})
}

func (w *watcher) loop() {
	runtime.LockOSThread()
	defer close(w.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(w.fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || w.stopping.Load() {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := ""
			if ev.Len > 0 {
				b := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				name = strings.TrimRight(string(b), "\x00")
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
			w.mu.Lock()
			dir, ok := w.paths[int(ev.Wd)]
			w.mu.Unlock()
			if !ok || name == "" {
				continue
			}
			rel := filepath.Join(dir, name)
			isDir := ev.Mask&unix.IN_ISDIR != 0
			switch {
			case ev.Mask&unix.IN_CREATE != 0 && isDir:
				w.report(rel, true)
				w.add(rel, true)
			case ev.Mask&unix.IN_CREATE != 0:
				// A file being written: its IN_CLOSE_WRITE or IN_MOVED_TO
				// is the change.
			default:
				w.report(rel, isDir)
			}
		}
	}
}

// close stops the loop: removing the watches queues IN_IGNORED events,
// which wake its read.
func (w *watcher) close() {
	w.stopping.Store(true)
	w.mu.Lock()
	for wd := range w.paths {
		_, _ = unix.InotifyRmWatch(w.fd, uint32(wd))
	}
	w.mu.Unlock()
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
	}
	unix.Close(w.fd)
}

// stepDir is the directory a step's claims go in: its name, or for a
// step of a called task (vm/define) its path made one path element.
func stepDir(step string) string { return filepath.Base(claims.Dir("/", "p", "r", step)) }
