package repair

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/boltfix/boltfix/pagewalk"
	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// What the audit knows of the store and of what the WAL writes.

type tripleID [32]byte

// triple identifies a put's effect: the record's key, value and lease.
func triple(key, value []byte, lease int64) tripleID {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(key)))
	h.Write(n[:])
	h.Write(key)
	binary.BigEndian.PutUint64(n[:], uint64(lease))
	h.Write(n[:])
	h.Write(value)
	var id tripleID
	h.Sum(id[:0])
	return id
}

// keyTop is a key's newest record in the store.
type keyTop struct {
	main      int64
	tombstone bool
	lease     int64
}

// storeView is the part of the salvaged store the audit needs.
type storeView struct {
	counts   map[tripleID]int   // wanted triples -> records holding them
	minRev   map[tripleID]int64 // the lowest revision holding each
	top      map[string]keyTop  // watched keys -> newest record
	leases   map[int64]bool
	topMain  int64
	finished int64
	sched    int64
}

// opWrites lists the keys and ranges a request may write.
type writeSet struct {
	keys   map[string]uint64 // key -> newest index writing it
	ranges []rangeWrite
	// revokes: indexes of lease revokes (they delete the keys attached).
	revokes []uint64
}

type rangeWrite struct {
	idx      uint64
	from, to []byte // to: nil = single key, "\x00" = every key from
}

func (w *writeSet) add(idx uint64, key, end []byte) {
	if len(end) == 0 {
		if w.keys[string(key)] < idx {
			w.keys[string(key)] = idx
		}
		return
	}
	w.ranges = append(w.ranges, rangeWrite{idx: idx, from: key, to: end})
}

func (w *writeSet) addOps(idx uint64, ops []*pb.RequestOp) {
	for _, op := range ops {
		switch {
		case op.GetRequestPut() != nil:
			w.add(idx, op.GetRequestPut().GetKey(), nil)
		case op.GetRequestDeleteRange() != nil:
			d := op.GetRequestDeleteRange()
			w.add(idx, d.GetKey(), d.GetRangeEnd())
		case op.GetRequestTxn() != nil:
			w.addOps(idx, op.GetRequestTxn().GetSuccess())
			w.addOps(idx, op.GetRequestTxn().GetFailure())
		}
	}
}

func inRange(k, from, to []byte) bool {
	if bytes.Compare(k, from) < 0 {
		return false
	}
	return len(to) == 1 && to[0] == 0 || bytes.Compare(k, to) < 0
}

// writtenAfter reports whether an entry after idx may write k (leased keys
// count as written by any later revoke).
func (w *writeSet) writtenAfter(k []byte, idx uint64, leased bool) bool {
	if w.keys[string(k)] > idx {
		return true
	}
	for _, r := range w.ranges {
		if r.idx > idx && inRange(k, r.from, r.to) {
			return true
		}
	}
	if leased {
		for _, r := range w.revokes {
			if r > idx {
				return true
			}
		}
	}
	return false
}

func laterThan(idxs []uint64, idx uint64) bool {
	for _, i := range idxs {
		if i > idx {
			return true
		}
	}
	return false
}

// txnBranch decides which branch a txn took from the store, when every
// compare is mod_revision(k) = X on a key no later entry writes.
func txnBranch(t *pb.TxnRequest, idx uint64, sv *storeView, ws *writeSet) ([]*pb.RequestOp, bool) {
	if len(t.Compare) == 0 {
		return t.Success, true
	}
	holds := true
	for _, c := range t.Compare {
		if c.Target != pb.Compare_MOD || c.Result != pb.Compare_EQUAL || len(c.RangeEnd) != 0 {
			return nil, false
		}
		top, ok := sv.top[string(c.Key)]
		if !ok || ws.writtenAfter(c.Key, idx, top.lease != 0 || top.tombstone) {
			return nil, false
		}
		mod := int64(0)
		if top.main != 0 && !top.tombstone {
			mod = top.main
		}
		if mod != c.GetModRevision() {
			holds = false
		}
	}
	if holds {
		return t.Success, true
	}
	return t.Failure, true
}

// readStore reads what the audit needs from the salvaged (healthy,
// validated) db.
func readStore(path string, wanted map[tripleID]bool, wantedKeys, watch map[string]bool) (*storeView, error) {
	sv := &storeView{counts: map[tripleID]int{}, minRev: map[tripleID]int64{}, top: map[string]keyTop{}, leases: map[int64]bool{}}
	for k := range watch {
		sv.top[k] = keyTop{}
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		if mb := tx.Bucket([]byte("meta")); mb != nil {
			for name, dst := range map[string]*int64{"finishedCompactRev": &sv.finished, "scheduledCompactRev": &sv.sched} {
				if r, ok := pagewalk.ParseRevision(mb.Get([]byte(name))); ok {
					*dst = r.Main
				}
			}
		}
		if lb := tx.Bucket([]byte("lease")); lb != nil {
			_ = lb.ForEach(func(k, _ []byte) error {
				if len(k) == 8 {
					sv.leases[int64(binary.BigEndian.Uint64(k))] = true
				}
				return nil
			})
		}
		kb := tx.Bucket([]byte("key"))
		if kb == nil {
			return nil
		}
		c := kb.Cursor()
		if len(wantedKeys) == 0 && len(sv.top) == 0 {
			// The WAL asks about no key (nothing in the audit's window):
			// only the newest readable record counts. Reading and decoding
			// every record for it took seconds on a db of a few GiB.
			for k, v := c.Last(); k != nil; k, v = c.Prev() {
				if rev, ok := pagewalk.ParseRevision(k); ok && v != nil {
					if _, err := pagewalk.ParseKeyValue(v); err == nil {
						sv.topMain = rev.Main
						break
					}
				}
			}
			return nil
		}
		for k, v := c.First(); k != nil; k, v = c.Next() {
			rev, ok := pagewalk.ParseRevision(k)
			if !ok || v == nil {
				continue
			}
			// ParseKeyValue accepts what proto.Unmarshal accepts and copies
			// nothing: only the records of keys the WAL puts are decoded
			// whole.
			kv, err := pagewalk.ParseKeyValue(v)
			if err != nil {
				continue
			}
			sv.topMain = rev.Main
			if _, w := sv.top[string(kv.Key)]; w {
				sv.top[string(kv.Key)] = keyTop{main: rev.Main, tombstone: rev.Tombstone, lease: kv.Lease}
			}
			// Hash only what can match: the records of keys the WAL puts.
			if rev.Tombstone || !wantedKeys[string(kv.Key)] {
				continue
			}
			var full mvccpb.KeyValue
			if proto.Unmarshal(v, &full) != nil {
				continue
			}
			if id := triple(full.Key, full.Value, full.Lease); wanted[id] {
				if sv.counts[id] == 0 {
					sv.minRev[id] = rev.Main
				}
				sv.counts[id]++
			}
		}
		return nil
	})
	return sv, err
}

func printable(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}
