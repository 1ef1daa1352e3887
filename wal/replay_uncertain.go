package wal

import (
	"context"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/lease"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
)

// A replay onto a db that lost records (ReplayOptions.Lost) applies each
// entry to a store that may lack what etcd's store held. A plain put writes
// the same revision either way. But whether a request writes a revision at
// all can depend on that state: a guarded transaction (every Kubernetes
// update, create and delete compares the key's mod revision), a delete of
// a key the db lacks, a lease revoke with no keys left. Where the outcome
// can differ, every later revision would get another number, and nothing
// after it could be checked: the replay stops before that entry
// (UncertainError), and what came after is reported lost.

// UncertainError means the replay stopped before an entry whose effect on
// the store depends on records the db may have lost.
type UncertainError struct {
	Index    uint64
	Term     uint64
	Revision int64 // the store's revision before the entry
	Why      string
}

func (e *UncertainError) Error() string {
	return fmt.Sprintf("wal replay stopped before entry %d (at revision %d): %s", e.Index, e.Revision, e.Why)
}

// outcomeUncertain says why req's effect may differ from etcd's, or "".
// It is asked only when some range is lost (replayer.run).
func (r *replayer) outcomeUncertain(req *pb.InternalRaftRequest) string {
	switch {
	case req.Txn != nil:
		return r.txnUncertain(req.Txn)
	case req.DeleteRange != nil:
		return r.deleteUncertain(req.DeleteRange.Key, req.DeleteRange.RangeEnd)
	case req.Put != nil:
		return r.putUncertain(req.Put)
	case req.LeaseRevoke != nil:
		if l := r.lessor.Lookup(lease.LeaseID(req.LeaseRevoke.ID)); l != nil && len(l.Keys()) == 0 {
			return fmt.Sprintf("lease %x is revoked with no key attached in the db, but its keys' records may be among the lost revisions: whether the revoke deleted any (and took a revision) is unknown", req.LeaseRevoke.ID)
		}
	}
	return ""
}

func (r *replayer) txnUncertain(t *pb.TxnRequest) string {
	for _, c := range t.Compare {
		if why := r.compareUncertain(c); why != "" {
			return why
		}
	}
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			var why string
			switch {
			case op.GetRequestDeleteRange() != nil:
				d := op.GetRequestDeleteRange()
				why = r.deleteUncertain(d.Key, d.RangeEnd)
			case op.GetRequestPut() != nil:
				why = r.putUncertain(op.GetRequestPut())
			case op.GetRequestTxn() != nil:
				why = r.txnUncertain(op.GetRequestTxn())
			}
			if why != "" {
				return why
			}
		}
	}
	return ""
}

// compareUncertain: a compare of a key's mod revision with X (how
// Kubernetes guards every write) is decided by the store unless a record
// of the key at X, or after it, may be lost; any other compare unless a
// record of the key after its newest in the store may be lost.
func (r *replayer) compareUncertain(c *pb.Compare) string {
	if len(c.RangeEnd) > 0 {
		return fmt.Sprintf("a transaction compares the range %q..%q, whose records may be among the lost revisions", c.Key, c.RangeEnd)
	}
	mod := r.modRevision(c.Key)
	if c.Target == pb.Compare_MOD && c.Result == pb.Compare_EQUAL {
		x := c.GetModRevision()
		switch {
		case mod == x && r.lostAbove(x):
			return fmt.Sprintf("a transaction requires %q at mod revision %d, which the db holds, but a newer record of it may be among the lost revisions", c.Key, x)
		case x > mod && r.lostAt(x):
			return fmt.Sprintf("a transaction requires %q at mod revision %d, which lies in a lost range", c.Key, x)
		}
		return ""
	}
	if r.lostAbove(mod) {
		return fmt.Sprintf("a transaction compares %q, a record of which may be among the lost revisions", c.Key)
	}
	return ""
}

func (r *replayer) deleteUncertain(key, end []byte) string {
	switch {
	case len(end) > 0:
		return fmt.Sprintf("a delete of the range %q..%q, whose records may be among the lost revisions", key, end)
	case len(end) == 0 && r.lostAbove(r.modRevision(key)):
		return fmt.Sprintf("a delete of %q, a record of which may be among the lost revisions: whether it deleted anything (and took a revision) is unknown", key)
	}
	return ""
}

// putUncertain: a put that keeps the key's value or lease fails when the
// key does not exist.
func (r *replayer) putUncertain(p *pb.PutRequest) string {
	if (p.IgnoreValue || p.IgnoreLease) && r.lostAbove(r.modRevision(p.Key)) {
		return fmt.Sprintf("a put that keeps the value or lease of %q, a record of which may be among the lost revisions", p.Key)
	}
	return ""
}

// modRevision is key's mod revision in the store now; 0 when it has none.
func (r *replayer) modRevision(key []byte) int64 {
	res, err := r.kv.Range(context.Background(), key, nil, mvcc.RangeOptions{Limit: 1})
	if err != nil || len(res.KVs) == 0 {
		return 0
	}
	return res.KVs[0].ModRevision
}

// lostAbove reports whether a lost range holds a revision above rev.
func (r *replayer) lostAbove(rev int64) bool {
	for _, l := range r.lost {
		if l[1] == 0 || l[1] > rev {
			return true
		}
	}
	return false
}

// lostAt reports whether revision rev lies in a lost range.
func (r *replayer) lostAt(rev int64) bool {
	for _, l := range r.lost {
		if l[0] <= rev && (l[1] == 0 || rev <= l[1]) {
			return true
		}
	}
	return false
}
