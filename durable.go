package dojob

import (
	"sync"
	"sync/atomic"
)

// writebackChunk is how many bytes the copy loop lets pile up in the page
// cache before it asks the kernel to start writing them to the disk
// (startWriteback). Small enough that a checkpoint's fsync, and the one
// before a file is marked transferred, find little left to write; large
// enough that the request costs nothing next to the copying.
const writebackChunk = 8 << 20

// bgSync runs a transfer's checkpoint fsyncs off the copy goroutine, so a
// checkpoint no longer stops the download for the length of an fsync. At
// most one is in flight; a checkpoint asked for meanwhile is skipped (the
// next tick asks again). The transfer owns the goroutine and waits for it
// (wait) before anything that changes the temporary file other than by
// appending — starting over, closing it, the final fsync — so the length a
// sync records is always the length of the file it synced.
type bgSync struct {
	wg   sync.WaitGroup
	busy atomic.Bool // a sync is in flight

	mu  sync.Mutex
	err error // a failed sync, not yet reported
}

// start fsyncs tf on a goroutine and then runs record (the caller's noting
// of the durable length it took before the call). It does nothing if a
// sync is still in flight.
func (b *bgSync) start(tf tempFile, record func()) {
	if !b.busy.CompareAndSwap(false, true) {
		return
	}
	b.wg.Go(func() {
		defer b.busy.Store(false)
		if err := tf.Sync(); err != nil {
			b.mu.Lock()
			b.err = err
			b.mu.Unlock()
			return
		}
		record()
	})
}

// failed returns (and forgets) the error of a sync that failed, without
// waiting for one in flight.
func (b *bgSync) failed() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.err
	b.err = nil
	return err
}

// wait waits for the sync in flight, if any, and returns (and forgets) the
// error of a failed one.
func (b *bgSync) wait() error {
	b.wg.Wait()
	return b.failed()
}
