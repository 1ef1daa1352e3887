package salvage

import "github.com/boltfix/boltfix/pagewalk"

// Carving reads a few hundred thousand scattered pages on a damaged db of
// a few GiB, one pread each, and judges each record it finds; the reads
// were half of it. pagesAhead reads the candidates on a goroutine of its
// own, in order, while the carving judges the pages before them on the
// caller's.

// carveAhead is how many pages are read ahead of the carving.
const carveAhead = 32

// maxAheadNode bounds a node read ahead: a larger one (a record of more
// than a MiB on overflow pages) is read by the carving itself, so the
// pages in flight (carveAhead queued, one being read, one being carved)
// hold at most carveAhead+2 MiB whatever the headers say.
const maxAheadNode = 1 << 20

// maxSpareBuf bounds a buffer kept for reuse: the spare ones hold at most
// (carveAhead+2) x 64 KiB.
const maxSpareBuf = 64 << 10

// aheadPage is one candidate as read ahead: its node (nil with err), or
// reread when the carving must read it itself (larger than maxAheadNode).
type aheadPage struct {
	pgid   uint64
	n      *pagewalk.Node
	buf    []byte
	err    error
	reread bool
}

type pagesAhead struct {
	res    *pagewalk.Result
	pages  chan aheadPage
	closed bool
	// spare holds buffers the carving is done with, for the reader to
	// reuse. Neither side waits on it: a full one drops the buffer, an
	// empty one makes the reader allocate.
	spare chan []byte
	stop  chan struct{}
	done  chan struct{}
}

// readPagesAhead starts reading pgids' nodes, each bounded as carve bounds
// it (carveLimit).
func readPagesAhead(res *pagewalk.Result, pgids []uint64) *pagesAhead {
	r := &pagesAhead{res: res, pages: make(chan aheadPage, carveAhead), spare: make(chan []byte, carveAhead+2),
		stop: make(chan struct{}), done: make(chan struct{})}
	ps := int64(res.File.PageSize)
	go func() {
		defer close(r.done)
		defer close(r.pages)
		for _, pgid := range pgids {
			var buf []byte
			select {
			case buf = <-r.spare:
			default:
			}
			limit := carveLimit(res, pgid)
			p := aheadPage{pgid: pgid}
			p.n, p.buf, p.err = res.File.ReadNodeInto(pgid, buf, min(limit, maxAheadNode))
			if p.err == nil && limit > maxAheadNode && (int64(p.n.Header.Overflow)+1)*ps > maxAheadNode {
				p = aheadPage{pgid: pgid, reread: true}
			}
			select {
			case r.pages <- p:
			case <-r.stop:
				return
			}
		}
	}()
	return r
}

// next returns the next candidate's node, reading it here when it was
// too large to read ahead (into buf, which it returns grown). ok is false
// when every candidate has been returned.
func (r *pagesAhead) next(buf []byte) (p aheadPage, ok bool, nb []byte) {
	p, ok = <-r.pages
	if ok && p.reread {
		p.n, buf, p.err = r.res.File.ReadNodeInto(p.pgid, buf, carveLimit(r.res, p.pgid))
		p.reread = false
	}
	return p, ok, buf
}

// done with p: its buffer may be reused; nothing may alias it any more.
func (r *pagesAhead) release(p aheadPage) {
	if p.buf == nil || cap(p.buf) > maxSpareBuf {
		return
	}
	select {
	case r.spare <- p.buf:
	default:
	}
}

// close stops the reader (the carving may end early) and waits for it;
// a second call does nothing.
func (r *pagesAhead) close() {
	if r.closed {
		return
	}
	r.closed = true
	close(r.stop)
	<-r.done
}
