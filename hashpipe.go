package dojob

// hashPipeDepth is the number of copy buffers a transfer with a Checksum
// cycles through: one being read and written while the others wait for, or
// are in, the hashing goroutine.
const hashPipeDepth = 4

// hashPipe hashes the buffers the copy loop has written on a goroutine of
// its own, so a download with a Checksum is not slowed by SHA-256 running
// in line. The copy loop reads into the free tail of the current buffer
// (next) and reports what it wrote (send); a buffer goes to the hasher once
// it is full — or when the digest must catch up (drain) — so the hasher is
// woken once per buffer, not once per read of the network (a read on
// loopback gives a few tens of KiB; a buffer holds 256 KiB). Buffers are
// hashed in the order sent; a buffer is reused only once it has been
// hashed. The copy loop owns the pipe and its goroutine: stop waits for it.
type hashPipe struct {
	x        *worker
	bufs     []*[]byte     // bufs[0] is x.buf; the others come from the pool
	work     chan []byte   // written bytes for the hasher, in order
	hashed   chan struct{} // one token per piece hashed
	exited   chan struct{} // closed when the hasher returns
	cur      int           // the buffer being filled (index into bufs)
	from     int           // its bytes not yet sent start here
	fill     int           // and end here
	inflight int           // pieces sent and not yet known to be hashed
}

// hashPipeMinRead is the least free room next offers for a read: a buffer
// with less left is sent as it is and the next one is used.
const hashPipeMinRead = 32 << 10

func (x *worker) startHashPipe() *hashPipe {
	p := &hashPipe{
		x:      x,
		bufs:   make([]*[]byte, hashPipeDepth),
		work:   make(chan []byte, hashPipeDepth),
		hashed: make(chan struct{}, hashPipeDepth),
		exited: make(chan struct{}),
	}
	p.bufs[0] = x.buf
	for i := 1; i < hashPipeDepth; i++ {
		p.bufs[i] = x.j.m.bufs.Get().(*[]byte)
	}
	h := x.h
	go func() {
		defer close(p.exited)
		for b := range p.work {
			h.Write(b)
			p.hashed <- struct{}{}
		}
	}()
	x.pipe = p
	return p
}

// next returns free room to read into: the rest of the current buffer, or
// — when that is short — a fresh buffer, waiting for the hasher if every
// buffer is in flight.
func (p *hashPipe) next() []byte {
	buf := *p.bufs[p.cur]
	if len(buf)-p.fill >= hashPipeMinRead {
		return buf[p.fill:]
	}
	p.ship()
	p.cur = (p.cur + 1) % hashPipeDepth
	p.from, p.fill = 0, 0
	// The buffer now current was sent before, hashPipeDepth pieces ago at
	// most: wait until it is hashed.
	for p.inflight >= hashPipeDepth {
		<-p.hashed
		p.inflight--
	}
	return *p.bufs[p.cur]
}

// send reports that the first n bytes of the room next returned were
// written.
func (p *hashPipe) send(n int) {
	p.fill += n
}

// ship sends the current buffer's bytes not yet sent to the hasher.
func (p *hashPipe) ship() {
	if p.fill == p.from {
		return
	}
	// A piece of the current buffer may be in flight already (drain
	// shipped it): the pieces of one buffer never overlap.
	p.work <- (*p.bufs[p.cur])[p.from:p.fill]
	p.inflight++
	p.from = p.fill
}

// drain waits until every byte written is hashed.
func (p *hashPipe) drain() {
	p.ship()
	for ; p.inflight > 0; p.inflight-- {
		<-p.hashed
	}
}

// stop drains the pipe, ends its goroutine and returns its extra buffers.
func (p *hashPipe) stop() {
	p.drain()
	close(p.work)
	<-p.exited
	for _, b := range p.bufs[1:] {
		p.x.j.m.bufs.Put(b)
	}
	p.x.pipe = nil
}
