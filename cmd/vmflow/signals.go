package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// signalContexts returns two contexts: the first is cancelled by the first
// Ctrl-C or SIGTERM (the run stops and undoes what it did), the second by
// the next one (the undos are abandoned too). A third one exits at once.
func signalContexts(onSignal func(n int)) (runCtx, undoCtx context.Context, stop func()) {
	runCtx, cancelRun := context.WithCancel(context.Background())
	undoCtx, cancelUndo := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 3)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case <-done:
				return
			case <-ch:
				n++
				if onSignal != nil {
					onSignal(n)
				}
				switch n {
				case 1:
					cancelRun()
				case 2:
					cancelUndo()
				default:
					os.Exit(exitInterrupted)
				}
			}
		}
	}()
	return runCtx, undoCtx, func() {
		signal.Stop(ch)
		close(done)
		cancelRun()
		cancelUndo()
	}
}
