package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket"
)

// downloadStream writes a volume's bytes, as the pool stores them, to w,
// and returns how many came. It ends when libvirtd has confirmed the end
// of the stream, or with an error that starts with what: libvirtd's, w's,
// ctx's, or the watchdog's when nothing came for the stall limit.
func (d *driver) downloadStream(ctx context.Context, vol libvirt.StorageVol, w io.Writer, what string) (int64, error) {
	c, err := d.dialRPC(ctx, what, false, func(limit time.Duration) error {
		return fmt.Errorf("%s: nothing moved for %v (libvirtd, or the way to it, stopped); the download was given up", what, limit)
	})
	if err != nil {
		return 0, err
	}
	defer c.close()

	var mu sync.Mutex
	var n int64
	var werr error
	received := func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
	onData := func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		if werr != nil {
			return
		}
		k, err := w.Write(b)
		n += int64(k)
		if err != nil {
			werr = err
			c.event(streamEvent{kind: streamFail, err: fmt.Errorf("writing the copy: %w", err)})
		}
	}
	if err := c.openStream(procStorageVolDownload, volArgs(vol, 0, 0), onData); err != nil {
		return received(), c.wrap(err)
	}
	for {
		select {
		case e := <-c.events:
			switch e.kind {
			case streamEOF:
				// The finish, which libvirtd confirms.
				if err := c.send(socket.StatusOK, nil); err != nil {
					return received(), c.wrap(err)
				}
			case streamDone:
				return received(), nil
			case streamFail:
				return received(), c.wrap(e.err)
			}
		case <-c.failed:
			return received(), c.failErr
		}
	}
}

// uploadStream writes length bytes read from src into a volume, from its
// start. It ends when libvirtd has confirmed that they are in the volume,
// or with an error that starts with what: libvirtd's, src's, ctx's, or the
// watchdog's when libvirtd took nothing for the stall limit.
func (d *driver) uploadStream(ctx context.Context, vol libvirt.StorageVol, src io.Reader, length int64, what string) error {
	c, err := d.dialRPC(ctx, what, false, func(limit time.Duration) error {
		return fmt.Errorf("%s: nothing moved for %v (libvirtd, or the way to it, stopped); the upload was given up", what, limit)
	})
	if err != nil {
		return err
	}
	defer c.close()
	c.sendsMove = true

	if err := c.openStream(procStorageVolUpload, volArgs(vol, 0, uint64(length)), nil); err != nil {
		return c.wrap(err)
	}
	buf := make([]byte, streamChunk)
	for {
		select {
		case e := <-c.events:
			// libvirtd ends an upload early only on an error.
			if e.err == nil {
				e.err = errors.New("libvirtd ended the stream before the upload did")
			}
			return c.wrap(e.err)
		case <-c.failed:
			return c.failure(c.failErr)
		default:
		}
		k, rerr := io.ReadFull(src, buf)
		if k > 0 {
			if err := c.send(socket.StatusContinue, buf[:k]); err != nil {
				return c.failure(err)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			_ = c.send(socket.StatusError, nil) // the abort
			return c.wrap(rerr)
		}
	}
	if err := c.send(socket.StatusOK, nil); err != nil {
		return c.failure(err)
	}
	for {
		select {
		case e := <-c.events:
			switch e.kind {
			case streamDone:
				return nil
			case streamFail:
				return c.wrap(e.err)
			}
		case <-c.failed:
			return c.failure(c.failErr)
		}
	}
}
