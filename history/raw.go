package history

import (
	"bytes"

	"github.com/boltfix/boltfix/pagewalk"
	"google.golang.org/protobuf/encoding/protowire"
)

// Raw scanning: a node with overflow pages that is rewritten as a smaller
// node keeps only its first page; the old continuation pages are freed
// with their bytes intact but no header says what they hold. bbolt writes
// a leaf's keys and values back to back, so a record there is still a
// 17-byte revision key followed by its mvccpb.KeyValue. rawScan finds such
// records in every page neither the tree nor a carved node covers. A
// match must have the revision key's exact shape, a KeyValue whose fields
// come in the order etcd marshals them, a key under the prefix, and a
// mod_revision equal to the revision key's main revision (etcd writes a
// put at its own revision): random bytes do not pass that.

const (
	// rawWindow is how much of a run of uncovered pages is scanned at a
	// time; rawOverlap is carried into the next window, so a record that
	// starts in one window may end in the next (etcd's request limit is
	// 1.5 MiB by default).
	rawWindow  = 8 << 20
	rawOverlap = 2 << 20
)

// rawScan scans the pages not covered (by the tree or a carved node).
func (c *collector) rawScan(res *pagewalk.Result, covered []bool) error {
	ps := res.File.PageSize
	var win []byte  // bytes of the current run of uncovered pages
	var base uint64 // page id of win[0]
	var nbuf []byte
	flush := func(final bool) {
		end := len(win)
		if !final {
			end = len(win) - rawOverlap
		}
		c.scanWindow(win, end, base, ps)
		if final {
			win = win[:0]
			return
		}
		keep := len(win) - end // whole pages: end and len(win) are multiples of ps
		copy(win, win[end:])
		win = win[:keep]
		base += uint64(end / ps)
	}
	for pgid := uint64(2); pgid < res.File.PageCount(); pgid++ {
		if covered[pgid] {
			if len(win) > 0 {
				flush(true)
			}
			continue
		}
		c.progress()
		if err := c.cancelled(); err != nil {
			return err
		}
		n, nb, err := res.File.ReadNodeInto(pgid, nbuf, int64(ps))
		nbuf = nb
		if err != nil {
			if len(win) > 0 {
				flush(true)
			}
			continue
		}
		if len(win) == 0 {
			base = pgid
		}
		data := n.Data
		if len(data) > ps {
			data = data[:ps]
		}
		win = append(win, data...)
		if len(data) < ps { // the file's last, partial page
			flush(true)
			continue
		}
		if len(win) >= rawWindow+rawOverlap {
			flush(false)
		}
	}
	if len(win) > 0 {
		flush(true)
	}
	return nil
}

// scanWindow tries every '_' in b that could be byte 8 of a revision key
// starting before end.
func (c *collector) scanWindow(b []byte, end int, base uint64, ps int) {
	for i := 8; i < len(b); {
		j := bytes.IndexByte(b[i:], '_')
		if j < 0 {
			return
		}
		at := i + j - 8 // where the revision key would start
		i += j + 1
		if at >= end {
			return
		}
		k, v, ok := rawRecord(b[at:], c.opts.Prefix)
		if !ok {
			continue
		}
		c.res.RawRecords++
		c.add(k, v, base+uint64(at/ps), false)
	}
}

// rawRecord reads a put record (revision key, then KeyValue) at the start
// of b, returning the key and the KeyValue's exact bytes.
func rawRecord(b, prefix []byte) (k, v []byte, ok bool) {
	if len(b) < 18 || !pagewalk.IsRevisionKey(b[:17]) {
		return nil, nil, false
	}
	rev, _ := pagewalk.ParseRevision(b[:17])
	kv := b[17:]
	p := 0
	// Fields 1..6 in etcd's order; 1..4 are always set on a put, 5
	// (value) and 6 (lease) only when not empty.
	var mod uint64
	for _, f := range []struct {
		num      protowire.Number
		typ      protowire.Type
		optional bool
	}{{1, protowire.BytesType, false}, {2, protowire.VarintType, false}, {3, protowire.VarintType, false},
		{4, protowire.VarintType, false}, {5, protowire.BytesType, true}, {6, protowire.VarintType, true}} {
		num, typ, n := protowire.ConsumeTag(kv[p:])
		if n < 0 || num != f.num || typ != f.typ {
			if f.optional {
				continue
			}
			return nil, nil, false
		}
		var m int
		var x uint64
		if typ == protowire.BytesType {
			var bs []byte
			bs, m = protowire.ConsumeBytes(kv[p+n:])
			if m >= 0 && num == 1 && !bytes.HasPrefix(bs, prefix) {
				return nil, nil, false
			}
		} else {
			x, m = protowire.ConsumeVarint(kv[p+n:])
		}
		if m < 0 {
			return nil, nil, false
		}
		if num == 3 {
			mod = x
		}
		p += n + m
	}
	if mod != uint64(rev.Main) {
		return nil, nil, false
	}
	return b[:17], kv[:p], true
}
