package pagewalk

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// EtcdBuckets are the top-level buckets etcd 3.5 to 3.7 create.
var EtcdBuckets = []string{"key", "meta", "lease", "alarm", "cluster", "members", "members_removed", "auth", "authUsers", "authRoles"}

// EtcdSummary is what the reached tree says about the etcd member.
type EtcdSummary struct {
	IsEtcd          bool     `json:"is_etcd"` // holds etcd's key and meta buckets
	MissingBuckets  []string `json:"missing_buckets"`
	ConsistentIndex *uint64  `json:"consistent_index"`
	Term            *uint64  `json:"term"`
	StorageVersion  string   `json:"storage_version"` // "" for etcd 3.5 and older
	ClusterVersion  string   `json:"cluster_version"`
	ConfState       string   `json:"conf_state"`
	// Compaction revisions (main), nil when never compacted.
	ScheduledCompact *int64 `json:"scheduled_compact_revision"`
	FinishedCompact  *int64 `json:"finished_compact_revision"`
	// The key bucket's reached records and their revision span.
	KeyRecords    int       `json:"key_records"`
	FirstRevision *Revision `json:"first_revision"`
	LastRevision  *Revision `json:"last_revision"`
	// With --deep only: live keys (latest record not a tombstone) and
	// tombstones among the reached records.
	LiveKeys   *int     `json:"live_keys,omitempty"`
	Tombstones *int     `json:"tombstones,omitempty"`
	Leases     int      `json:"leases"`
	Members    []Member `json:"members"`
	// RemovedMembers are the ids (hex) in the members_removed bucket.
	RemovedMembers []string `json:"removed_members"`
	Alarms         []string `json:"alarms"`
}

// Member is one entry of etcd's members bucket.
type Member struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner"`
}

func decodeKeyValue(v []byte) error {
	_, err := ParseKeyValue(v)
	return err
}

// ForEach calls fn for every readable record of a reached bucket, in key
// order, skipping elements that are damaged and nested buckets. k and v
// alias a buffer that the next call reuses.
func (r *Result) ForEach(b *Bucket, fn func(k, v []byte) error) error {
	return r.forEach(b, true, nil, func(k, v []byte, _ Lease) error { return fn(k, v) })
}

// ForEachOwned is ForEach where k and v stay valid after fn returns: each
// page is read into a buffer of its own, so a writer can keep the slices
// without copying them again.
func (r *Result) ForEachOwned(b *Bucket, fn func(k, v []byte) error) error {
	return r.forEach(b, false, nil, func(k, v []byte, _ Lease) error { return fn(k, v) })
}

// forEach reads b's records; reuse says whether one read buffer serves
// every page (ForEach) or each page gets its own (ForEachOwned), lent by
// l when l is set (ForEachLent).
func (r *Result) forEach(b *Bucket, reuse bool, l *Lender, fn func(k, v []byte, lease Lease) error) error {
	if b.Inline {
		n, err := r.File.ReadNode(b.Holder)
		if err != nil {
			return err
		}
		// An inline bucket the census found unreadable holds nothing that
		// can be read; its finding says so.
		e, fe := n.Leaf(b.Element)
		if fe != nil {
			return nil
		}
		_, inl, fe := ParseBucket(e.Value, b.Holder, n.Offset)
		if fe != nil || inl == nil {
			return nil
		}
		return forEachLeaf(inl, 0, fn)
	}
	var buf []byte
	for i := 0; i < len(b.Leaves); {
		if !reuse {
			// Leaves laid out back to back (as a db written in key order
			// has them) are read in one call: one pread per page cost
			// more than the copy on a multi-GiB db.
			if nodes, lease, used := r.readRun(b.Leaves[i:], l); used > 0 {
				for _, n := range nodes {
					if err := forEachLeaf(n, lease, fn); err != nil {
						return err
					}
				}
				i += used
				continue
			}
			buf = nil
		}
		var n *Node
		var err error
		n, buf, err = r.File.readNode(b.Leaves[i], buf)
		if err != nil {
			return err
		}
		var lease Lease
		if l != nil {
			lease = l.current()
		}
		if err := forEachLeaf(n, lease, fn); err != nil {
			return err
		}
		i++
	}
	return nil
}

// maxRunBytes bounds one coalesced read of adjacent leaves.
const maxRunBytes = 256 << 10

// readRun reads the longest prefix (two pages or more, or one node when l
// lends the buffer) of pgids whose nodes lie back to back in the file, as
// the census saw them, in one read into a buffer the nodes own: a fresh
// one, or one lent by l. A node whose header no longer says what the
// census saw (the file changed) ends the run before it. used is 0 when no
// such run starts at pgids[0].
func (r *Result) readRun(pgids []uint64, l *Lender) (nodes []*Node, lease Lease, used int) {
	ps := uint64(r.File.PageSize)
	end, total := pgids[0], uint64(0)
	for used < len(pgids) && pgids[used] == end && pgids[used] < uint64(len(r.c.sums)) {
		s := r.c.sums[pgids[used]]
		span := uint64(s.overflow) + 1
		if s.state != stateWellFormed || (total+span)*ps > maxRunBytes || end+span > r.File.PageCount() {
			break
		}
		end += span
		total += span
		used++
	}
	// One page alone is read by readNode, into a buffer of its own,
	// unless l lends one; a node with overflow pages is read here too, in
	// one call where readNode makes two (its header first, to learn its
	// size, which the census already knows).
	if used == 0 || used == 1 && r.c.sums[pgids[0]].overflow == 0 && l == nil {
		return nil, 0, 0
	}
	start := pgids[0]
	var buf []byte
	if l != nil {
		buf, lease = l.borrow(int(total * ps))
	} else {
		buf = make([]byte, total*ps)
	}
	n, err := r.File.readAt(buf, int64(start*ps))
	if err != nil || uint64(n) != total*ps {
		return nil, 0, 0 // read page by page, where errors are reported
	}
	nodes = make([]*Node, 0, used)
	for _, pgid := range pgids[:used] {
		s := r.c.sums[pgid]
		at := (pgid - start) * ps
		data := buf[at : at+(uint64(s.overflow)+1)*ps : at+(uint64(s.overflow)+1)*ps]
		h, ok := ParseHeader(data)
		if !ok || h.Overflow != s.overflow || h.Count != s.count || h.ID != pgid {
			break
		}
		nodes = append(nodes, &Node{Pgid: pgid, Offset: int64(pgid * ps), Header: h, Data: data})
	}
	return nodes, lease, len(nodes)
}

// ForEachLent is ForEachOwned with the pages read on another goroutine,
// ahead of fn: a caller that writes what it reads (salvage into bbolt)
// overlaps its writes with the reads. fn runs on the caller's goroutine,
// in key order. With l set, the pages are read into buffers l lends, and
// fn is told each record's lease: the caller gives the buffers back with
// l.ReturnBefore (lend.go). With l nil the records stay valid for good
// and every lease is 0.
func (r *Result) ForEachLent(b *Bucket, l *Lender, fn func(k, v []byte, lease Lease) error) error {
	type kv struct {
		k, v  []byte
		lease Lease
	}
	const batchSize = 256
	// Eight batches read ahead: the reader keeps going while the caller
	// waits on a commit (salvage's write queue, writequeue.go).
	batches := make(chan []kv, 8)
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	errStopped := errors.New("stopped")
	go func() {
		defer close(batches)
		batch := make([]kv, 0, batchSize)
		err := r.forEach(b, false, l, func(k, v []byte, lease Lease) error {
			batch = append(batch, kv{k, v, lease})
			if len(batch) < batchSize {
				return nil
			}
			select {
			case batches <- batch:
			case <-stop:
				return errStopped
			}
			batch = make([]kv, 0, batchSize)
			return nil
		})
		if err == nil && len(batch) > 0 {
			select {
			case batches <- batch:
			case <-stop:
			}
		}
		readErr <- err
	}()
	for batch := range batches {
		for _, p := range batch {
			if err := fn(p.k, p.v, p.lease); err != nil {
				close(stop)
				for range batches {
				}
				return err
			}
		}
	}
	if err := <-readErr; err != nil && err != errStopped {
		return err
	}
	return nil
}

// forEachLeaf calls fn for every readable record of leaf n, which lies
// in a buffer lent under lease (0: not lent).
func forEachLeaf(n *Node, lease Lease, fn func(k, v []byte, lease Lease) error) error {
	for i := 0; i < n.Elements(); i++ {
		e, fe := n.Leaf(i)
		if fe != nil {
			continue
		}
		if e.IsBucket() {
			continue
		}
		if err := fn(e.Key, e.Value, lease); err != nil {
			return err
		}
	}
	return nil
}

func (r *Result) etcdSummary(deep bool) *EtcdSummary {
	s := &EtcdSummary{MissingBuckets: []string{}, Members: []Member{}, RemovedMembers: []string{}, Alarms: []string{}}
	for _, name := range EtcdBuckets {
		if r.Bucket(name) == nil {
			s.MissingBuckets = append(s.MissingBuckets, name)
		}
	}
	key, meta := r.Bucket("key"), r.Bucket("meta")
	s.IsEtcd = key != nil && meta != nil
	if !s.IsEtcd && key == nil && meta == nil {
		return s
	}
	if meta != nil {
		_ = r.ForEach(meta, func(k, v []byte) error {
			switch string(k) {
			case "consistent_index":
				if len(v) == 8 {
					s.ConsistentIndex = u64p(binary.BigEndian.Uint64(v))
				}
			case "term":
				if len(v) == 8 {
					s.Term = u64p(binary.BigEndian.Uint64(v))
				}
			case "storageVersion":
				s.StorageVersion = printable(v)
			case "confState":
				s.ConfState = printable(v)
			case "scheduledCompactRev":
				if rv, ok := ParseRevision(v); ok {
					s.ScheduledCompact = i64p(rv.Main)
				}
			case "finishedCompactRev":
				if rv, ok := ParseRevision(v); ok {
					s.FinishedCompact = i64p(rv.Main)
				}
			}
			return nil
		})
	}
	if b := r.Bucket("cluster"); b != nil {
		_ = r.ForEach(b, func(k, v []byte) error {
			if string(k) == "clusterVersion" {
				s.ClusterVersion = printable(v)
			}
			return nil
		})
	}
	if b := r.Bucket("members"); b != nil {
		_ = r.ForEach(b, func(k, v []byte) error {
			// etcd writes the id as a JSON number (types.ID); the key
			// holds it in hex, which is the form printed.
			var m struct {
				Member
				ID json.RawMessage `json:"id"`
			}
			if json.Unmarshal(v, &m) == nil {
				m.Member.ID = printable(k)
				s.Members = append(s.Members, m.Member)
			}
			return nil
		})
	}
	if b := r.Bucket("members_removed"); b != nil {
		_ = r.ForEach(b, func(k, _ []byte) error {
			s.RemovedMembers = append(s.RemovedMembers, printable(k))
			return nil
		})
	}
	if b := r.Bucket("alarm"); b != nil {
		_ = r.ForEach(b, func(k, v []byte) error {
			var am etcdserverpb.AlarmMember
			if proto.Unmarshal(k, &am) == nil {
				s.Alarms = append(s.Alarms, fmt.Sprintf("%s on member %x", am.Alarm, am.MemberID))
			} else {
				s.Alarms = append(s.Alarms, "undecodable alarm "+printable(k))
			}
			return nil
		})
	}
	if b := r.Bucket("lease"); b != nil {
		s.Leases = b.Records
	}
	if key != nil {
		s.KeyRecords = key.Records
		if rv, ok := ParseRevision(key.First); ok {
			s.FirstRevision = &rv
		}
		if rv, ok := ParseRevision(key.Last); ok {
			s.LastRevision = &rv
		}
		if deep {
			latest := map[string]bool{} // key -> latest record is a tombstone
			tomb := 0
			_ = r.ForEach(key, func(k, v []byte) error {
				rv, ok := ParseRevision(k)
				if !ok {
					return nil
				}
				kv, err := ParseKeyValue(v)
				if err != nil {
					return nil
				}
				if rv.Tombstone {
					tomb++
				}
				latest[string(kv.Key)] = rv.Tombstone
				return nil
			})
			live := 0
			for _, t := range latest {
				if !t {
					live++
				}
			}
			s.LiveKeys, s.Tombstones = &live, &tomb
		}
	}
	sort.Slice(s.Members, func(i, j int) bool { return s.Members[i].ID < s.Members[j].ID })
	return s
}

// consistentIndexUnder reads meta/consistent_index under a root candidate
// leaf, reading at most a few pages. 0 when it cannot be read.
func (c *census) consistentIndexUnder(root uint64) uint64 {
	// One page is enough for a root leaf of etcd's ten buckets; reading
	// each candidate's overflow claim would cost the square of the file.
	n, _, err := c.f.readNodeLimit(root, nil, int64(c.f.PageSize))
	if err != nil {
		return 0
	}
	// n.Elements, not the count read from disk: past the page's last
	// element header each element would cost an error and its allocation
	// (FuzzScan: 5 MB for a 2 KiB file claiming 65,535).
	for i := 0; i < n.Elements(); i++ {
		e, fe := n.Leaf(i)
		if fe != nil || !e.IsBucket() || string(e.Key) != "meta" {
			continue
		}
		hdr, inl, fe := ParseBucket(e.Value, root, n.Offset)
		if fe != nil {
			return 0
		}
		if inl == nil {
			if hdr.Root < 2 || hdr.Root >= uint64(len(c.sums)) {
				return 0
			}
			if inl, _, err = c.f.readNodeLimit(hdr.Root, nil, int64(c.f.PageSize)); err != nil || inl.Flags != FlagLeaf || inl.Header.ID != hdr.Root {
				return 0
			}
		}
		var ci uint64
		_ = forEachLeaf(inl, 0, func(k, v []byte, _ Lease) error {
			if string(k) == "consistent_index" && len(v) == 8 {
				ci = binary.BigEndian.Uint64(v)
			}
			return nil
		})
		return ci
	}
	return 0
}
