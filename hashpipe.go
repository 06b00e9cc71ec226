package dojob

// hashPipeDepth is the number of copy buffers a transfer with a Checksum
// cycles through: one being read and written while the others wait for, or
// are in, the hashing goroutine.
const hashPipeDepth = 4

// hashPipe hashes the buffers the copy loop has written on a goroutine of
// its own, so a download with a Checksum is not slowed by SHA-256 running
// in line. Buffers are hashed in the order sent; a buffer is reused only
// once it has been hashed. The copy loop owns the pipe and its goroutine:
// stop waits for it.
type hashPipe struct {
	x        *worker
	bufs     []*[]byte     // bufs[0] is x.buf; the others come from the pool
	work     chan []byte   // written bytes for the hasher, in order
	hashed   chan struct{} // one token per buffer hashed
	exited   chan struct{} // closed when the hasher returns
	nexti    int           // the buffer to use next (index into bufs, mod depth)
	inflight int           // buffers sent and not yet known to be hashed
}

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

// next returns a buffer that is free to read into, waiting for the hasher
// if every buffer is in flight.
func (p *hashPipe) next() []byte {
	if p.inflight == hashPipeDepth {
		<-p.hashed
		p.inflight--
	}
	return *p.bufs[p.nexti]
}

// send queues the bytes just written from the buffer next returned.
func (p *hashPipe) send(b []byte) {
	p.work <- b
	p.inflight++
	p.nexti = (p.nexti + 1) % hashPipeDepth
}

// drain waits until every byte sent is hashed.
func (p *hashPipe) drain() {
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
