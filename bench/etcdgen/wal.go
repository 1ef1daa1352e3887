package etcdgen

import (
	"math/rand/v2"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	etcdwal "go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The mix of requests in the WAL, in percent: a few deletes, new keys,
// and overwrites of live keys (the db's or the WAL's own), as a
// Kubernetes apiserver writes them.
const (
	walDeletePct = 1
	walNewPct    = 35
)

// walBatchBytes is how much one Save hands etcd's WAL: one fsync each, as
// a member under load syncs a Ready's worth of entries at a time.
const walBatchBytes = 1 << 20

// expectTail is how many of the last entries' keys Expect holds.
const expectTail = 32

// requestIDs is etcd's idutil.Generator: the member id's low 16 bits, a
// millisecond timestamp, a counter. The timestamp is fixed so that the
// output depends on the seed alone.
type requestIDs struct{ prefix, suffix uint64 }

func newRequestIDs(member uint64, unixMilli uint64) *requestIDs {
	const tsLen, cntLen = 40, 8
	return &requestIDs{prefix: uint64(uint16(member)) << (tsLen + cntLen), suffix: (unixMilli & (1<<tsLen - 1)) << cntLen}
}

func (g *requestIDs) next() uint64 {
	g.suffix++
	return g.prefix | g.suffix&(1<<48-1)
}

// walOp is one of the last entries, kept for Expect.
type walOp struct {
	index uint64
	key   string
	value []byte // nil: a delete
}

// writeEntries appends committed entries to w until about cfg.WALBytes of
// records are written: each a normal entry of the db's term holding a
// marshalled InternalRaftRequest with a fresh request id, a Put (a new
// /registry/ key, or an overwrite of a live one keeping its lease) or a
// DeleteRange of one live key, as etcd's apply code expects them. Each
// Save carries the HardState committing what it appends, as a one-member
// raft commits an entry as soon as it is persisted.
func writeEntries(w *etcdwal.WAL, s *dbState, cfg DataDirConfig, st *DataDirStats) error {
	seed := cfg.Seed
	if seed == 0 {
		seed = 1
	}
	g := &gen{rnd: rand.New(rand.NewPCG(seed^0x5a17, seed^0x9e3779b97f4a7c15))}
	g.cfg.defaults()
	ids := newRequestIDs(MemberID, 1_780_000_000_000+seed)
	live := make([]liveKey, len(s.live))
	copy(live, s.live)
	pos := make(map[string]int, len(live))
	for i, k := range live {
		pos[k.key] = i
	}
	lastOp := map[string]uint64{}
	var tail []walOp
	var deletes []walOp
	term, vote := s.term, MemberID
	idx := s.ci
	var batch []*raftpb.Entry
	batchBytes := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		commit := batch[len(batch)-1].GetIndex()
		err := w.Save(&raftpb.HardState{Term: &term, Vote: &vote, Commit: &commit}, batch)
		batch, batchBytes = batch[:0], 0
		return err
	}
	for st.RecordBytes < cfg.WALBytes {
		idx++
		req := &pb.InternalRaftRequest{Header: &pb.RequestHeader{ID: ids.next()}}
		op := walOp{index: idx}
		switch p := g.rnd.IntN(100); {
		case p < walDeletePct && len(live) > 0:
			i := g.rnd.IntN(len(live))
			op.key = live[i].key
			req.DeleteRange = &pb.DeleteRangeRequest{Key: []byte(op.key)}
			last := len(live) - 1
			live[i] = live[last]
			pos[live[i].key] = i
			live = live[:last]
			delete(pos, op.key)
			st.Deletes++
			if deletes = append(deletes, op); len(deletes) > 8 {
				deletes = append(deletes[:0], deletes[len(deletes)-4:]...)
			}
		case p < walDeletePct+walNewPct || len(live) == 0:
			lk := liveKey{key: g.newName()}
			if len(s.leases) > 0 && g.rnd.IntN(8) == 0 {
				lk.lease = s.leases[g.rnd.IntN(len(s.leases))]
			}
			if _, ok := pos[lk.key]; !ok {
				pos[lk.key] = len(live)
				live = append(live, lk)
			}
			op.key, op.value = lk.key, append([]byte(nil), g.value()...)
			req.Put = &pb.PutRequest{Key: []byte(op.key), Value: op.value, Lease: lk.lease}
			st.Puts++
			st.NewKeys++
		default:
			lk := live[g.rnd.IntN(len(live))]
			op.key, op.value = lk.key, append([]byte(nil), g.value()...)
			req.Put = &pb.PutRequest{Key: []byte(op.key), Value: op.value, Lease: lk.lease}
			st.Puts++
			st.Overwrites++
		}
		lastOp[op.key] = idx
		tail = append(tail, op)
		if len(tail) > 2*expectTail {
			tail = append(tail[:0], tail[len(tail)-expectTail:]...)
		}
		data, err := proto.Marshal(req)
		if err != nil {
			return err
		}
		e := &raftpb.Entry{Term: &term, Index: new(idx), Type: raftpb.EntryNormal.Enum(), Data: data}
		n := proto.Size(e)
		st.RecordBytes += recordBytes(n)
		batch = append(batch, e)
		if batchBytes += n; batchBytes >= walBatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		st.Entries++
	}
	if err := flush(); err != nil {
		return err
	}
	st.LastIndex = idx
	st.Expect = expectFrom(s, st, tail, deletes, lastOp)
	return nil
}

// recordBytes is the size of the WAL frame of an entry of n bytes: the
// 8-byte length, the walpb.Record (type, crc, data) and the padding to 8.
func recordBytes(n int) int64 {
	rec := 2 + 6 + 1 + varintLen(uint64(n)) + n
	return int64(8 + (rec+7)&^7)
}

func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// expectFrom lists the final state of the keys of the last entries and of
// the last deletes not undone by a later put.
func expectFrom(s *dbState, st *DataDirStats, tail, deletes []walOp, lastOp map[string]uint64) *Expect {
	e := &Expect{ConsistentIndex: s.ci, LastIndex: st.LastIndex, Entries: st.Entries, RecordBytes: st.RecordBytes,
		Revision: s.rev + int64(st.Puts+st.Deletes)}
	if len(tail) > expectTail {
		tail = tail[len(tail)-expectTail:]
	}
	n := 0
	for i := len(deletes) - 1; i >= 0 && n < 4; i-- {
		tail = append(tail, deletes[i])
		n++
	}
	seen := map[string]bool{}
	for _, op := range tail {
		if lastOp[op.key] != op.index || seen[op.key] {
			continue
		}
		seen[op.key] = true
		e.Keys = append(e.Keys, ExpectKey{Key: op.key, Value: op.value, Deleted: op.value == nil})
	}
	return e
}
