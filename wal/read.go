package wal

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
)

// Flag says how far a record read from the WAL can be trusted.
type Flag string

// Flags, from most to least trusted.
const (
	// FlagNone: the record's CRC chains from the records before it.
	FlagNone Flag = ""
	// FlagAfterDamage: the record comes after a Stop in the same segment (or
	// the segment follows a damaged one); its CRC chains from the record the
	// reader resynchronised on.
	FlagAfterDamage Flag = "after-damage"
	// FlagUnverified: the first record after a resynchronisation. Its frame,
	// record and payload decode and the next record chains from its CRC, but
	// its own data could not be checked because its predecessor was lost.
	FlagUnverified Flag = "unverified"
	// FlagCRCMismatch: the record decodes but fails its CRC: its bytes were
	// altered. Such records are reported (Log.Suspect) and never used.
	FlagCRCMismatch Flag = "crc-mismatch"
)

// RecordCounts counts the records of one segment by type.
type RecordCounts struct {
	Metadata int `json:"metadata"`
	Entry    int `json:"entry"`
	State    int `json:"state"`
	CRC      int `json:"crc"`
	Snapshot int `json:"snapshot"`
}

func (c *RecordCounts) add(t RecordType) {
	switch t {
	case RecordMetadata:
		c.Metadata++
	case RecordEntry:
		c.Entry++
	case RecordState:
		c.State++
	case RecordCRC:
		c.CRC++
	case RecordSnapshot:
		c.Snapshot++
	}
}

// Segment is what the reader found in one %016x-%016x.wal file.
type Segment struct {
	Name string `json:"name"`
	Seq  uint64 `json:"seq"`
	// NameIndex is the index in the file name: the index etcd expected the
	// segment's first entry to have.
	NameIndex uint64 `json:"name_index"`
	Size      int64  `json:"size"`
	// DataEnd is the offset just after the last record read.
	DataEnd int64 `json:"data_end"`
	// FirstIndex and LastIndex are the entry indexes found in the segment
	// (0 when it holds no entry).
	FirstIndex uint64       `json:"first_index"`
	LastIndex  uint64       `json:"last_index"`
	Records    RecordCounts `json:"records"`
	Stops      []*Stop      `json:"stops"`
}

// Metadata is the WAL metadata record: etcdserverpb.Metadata.
type Metadata struct {
	NodeID    uint64 `json:"node_id"`
	ClusterID uint64 `json:"cluster_id"`
	raw       []byte
}

// HardState is raft's persisted state; the last one in the WAL wins.
type HardState struct {
	Term    uint64 `json:"term"`
	Vote    uint64 `json:"vote"`
	Commit  uint64 `json:"commit"`
	Segment string `json:"segment"`
	Offset  int64  `json:"offset"`
	Flag    Flag   `json:"flag,omitempty"`
}

// Snapshot is a walpb.Snapshot record: etcd took a raft snapshot at Index.
type Snapshot struct {
	Index     uint64            `json:"index"`
	Term      uint64            `json:"term"`
	ConfState *raftpb.ConfState `json:"-"`
	Voters    []uint64          `json:"voters,omitempty"`
	Learners  []uint64          `json:"learners,omitempty"`
	Segment   string            `json:"segment"`
	Offset    int64             `json:"offset"`
	Flag      Flag              `json:"flag,omitempty"`
}

// Gap is a run of missing entry indexes, From..To inclusive.
type Gap struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// Log is everything Read found in a WAL directory.
type Log struct {
	Dir      string
	Segments []*Segment
	Metadata *Metadata // first metadata record; nil if none was readable
	// HardState is the last readable HardState; HardStates counts them all.
	HardState  *HardState
	HardStates int
	Snapshots  []Snapshot
	// Entries follow raft's overwrite semantics: an entry whose index is at
	// or below the last one truncates the log from there. They are sorted by
	// index; Gaps lists what is missing between them.
	Entries []*Entry
	// Overwritten counts entries replaced by later ones with the same index
	// (normal after a leader change).
	Overwritten int
	// Suspect holds entries that were read but not used: CRC mismatches, and
	// flagged entries that would have truncated verified ones.
	Suspect []*Entry
	Gaps    []Gap

	// files are the segments Entries' data is read from again (Load).
	files []*segFile

	membersOnce sync.Once
	members     []MembershipEntry
}

// Stops lists every Stop of every segment, in reading order.
func (l *Log) Stops() []*Stop {
	var out []*Stop
	for _, s := range l.Segments {
		out = append(out, s.Stops...)
	}
	return out
}

// Clean reports whether the WAL was read from end to end without a Stop.
func (l *Log) Clean() bool { return len(l.Stops()) == 0 }

// FirstIndex is the index of the first entry found, 0 if none.
func (l *Log) FirstIndex() uint64 {
	if len(l.Entries) == 0 {
		return 0
	}
	return l.Entries[0].GetIndex()
}

// LastIndex is the index of the last entry found, 0 if none.
func (l *Log) LastIndex() uint64 {
	if len(l.Entries) == 0 {
		return 0
	}
	return l.Entries[len(l.Entries)-1].GetIndex()
}

// CommitIndex is the commit index of the last HardState: entries above it
// were never known to be committed and must not be applied.
func (l *Log) CommitIndex() uint64 {
	if l.HardState == nil {
		return 0
	}
	return l.HardState.Commit
}

// Missing returns the entries a db with the given consistent_index needs but
// the WAL lacks: a purged prefix (the WAL starts after consistentIndex+1) and
// the Gaps above consistentIndex, up to the commit index.
func (l *Log) Missing(consistentIndex uint64) []Gap {
	var out []Gap
	commit := l.CommitIndex()
	if first := l.FirstIndex(); first > consistentIndex+1 {
		out = append(out, Gap{From: consistentIndex + 1, To: min(first-1, max(commit, consistentIndex+1))})
	} else if first == 0 && commit > consistentIndex {
		out = append(out, Gap{From: consistentIndex + 1, To: commit})
	}
	for _, g := range l.Gaps {
		if g.To <= consistentIndex || g.From > commit {
			continue
		}
		out = append(out, Gap{From: max(g.From, consistentIndex+1), To: min(g.To, commit)})
	}
	return out
}

// ReplayEntries returns the entries Replay should get for a db whose
// consistent_index is consistentIndex: committed (index ≤ CommitIndex), above
// consistentIndex, and, unless allowFlagged, read without any damage before
// them in their segment.
func (l *Log) ReplayEntries(consistentIndex uint64, allowFlagged bool) []*Entry {
	var out []*Entry
	commit := l.CommitIndex()
	for _, e := range l.Entries {
		i := e.GetIndex()
		if i <= consistentIndex || i > commit {
			continue
		}
		if e.Flag != FlagNone && !allowFlagged {
			continue
		}
		out = append(out, e)
	}
	return out
}

// Dir finds the WAL directory: dir itself, or dir/member/wal (a data dir),
// or dir/wal (a member dir).
func Dir(dir string) string {
	for _, sub := range []string{filepath.Join("member", "wal"), "wal"} {
		p := filepath.Join(dir, sub)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
	}
	return dir
}

type segName struct {
	name       string
	seq, index uint64
}

// listSegments returns the segment files of dir sorted by sequence, as etcd's
// readWALNames/checkWALNames do: other files (0.tmp of the file pipeline,
// snapshots) are ignored.
func listSegments(dir string) ([]segName, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []segName
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".wal") {
			continue
		}
		var s segName
		if _, err := fmt.Sscanf(e.Name(), "%016x-%016x.wal", &s.seq, &s.index); err != nil || len(e.Name()) != 16+1+16+4 {
			continue
		}
		s.name = e.Name()
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out, nil
}

// Read decodes every segment of the WAL in dir (a data dir, member dir or WAL
// dir) with boltfix's own loop. It returns an error only when there is nothing
// to read; damage is reported in the Log's segments as Stops, never by ending
// early. Memory use is bounded by the size of one segment plus what the
// Log keeps: per entry its index, term, type and place (Entry), never its
// data. The segment files stay open for Load until the Log is closed.
func Read(dir string) (*Log, error) {
	walDir := Dir(dir)
	names, err := listSegments(walDir)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoWAL, walDir)
	}
	r := &reader{log: &Log{Dir: walDir}}
	win := &window{}
	var buf []byte
	for i, n := range names {
		seg := &Segment{Name: n.name, Seq: n.seq, NameIndex: n.index}
		r.log.Segments = append(r.log.Segments, seg)
		if i > 0 && n.seq != names[i-1].seq+1 {
			seg.Stops = append(seg.Stops, &Stop{Segment: n.name, Cause: CauseMissingSegment, ResumedAt: 0,
				Detail: fmt.Sprintf("sequence jumps from %d to %d", names[i-1].seq, n.seq)})
			// The chain cannot be checked across a missing segment.
			r.chainKnown = false
			r.damaged = true
		}
		sf, b, err := openSegment(filepath.Join(walDir, n.name), buf)
		if err != nil {
			seg.Stops = append(seg.Stops, &Stop{Segment: n.name, Cause: CauseIO, Detail: err.Error(), ResumedAt: -1})
			r.chainKnown = false
			r.damaged = true
			continue
		}
		sf.name, sf.win, buf = n.name, win, b
		r.log.files = append(r.log.files, sf)
		r.seg = sf
		seg.Size = int64(len(buf))
		r.readSegment(seg, buf, i == len(names)-1)
	}
	r.seg = nil
	r.log.Gaps = gaps(r.log.Entries)
	return r.log, nil
}

// openSegment reads the segment at path whole into buf (grown as needed:
// one buffer serves every segment, and nothing read keeps a reference
// into it) and keeps the file open for Load.
func openSegment(path string, buf []byte) (*segFile, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, buf, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, buf, err
	}
	n := fi.Size()
	if int64(cap(buf)) < n {
		// etcd cuts a segment once it passes 64 MB, by up to one write:
		// the room to spare lets the next segments fit too.
		buf = make([]byte, n, n+n/8)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(f, buf); err != nil {
		f.Close()
		return nil, buf[:0], err
	}
	return &segFile{f: f}, buf, nil
}

// reader carries the rolling CRC and trust state across segments.
type reader struct {
	log *Log
	seg *segFile // the segment being read
	// prevCRC is the CRC of the last record that chained; valid when
	// chainKnown. It starts unknown, as etcd's does for the first segment read.
	prevCRC    uint32
	chainKnown bool
	// damaged is set after any Stop: later records are flagged after-damage.
	damaged bool
}

func (r *reader) readSegment(seg *Segment, buf []byte, last bool) {
	size := int64(len(buf))
	off := int64(0)
	for off < size {
		f, cause := parseFrame(buf, off)
		if cause == "" && f.zero {
			nz := firstNonZero(buf, off)
			if nz < 0 {
				break // clean end of the segment's records
			}
			st := &Stop{Segment: seg.Name, Offset: off, Cause: CauseDataAfterEnd,
				Detail: fmt.Sprintf("zero frame, then a non-zero byte at 0x%x", nz)}
			off = r.resync(seg, buf, st, nz&^7, last, nil)
			continue
		}
		if cause != "" {
			st := &Stop{Segment: seg.Name, Offset: off, Cause: cause, Detail: frameDetail(f, cause, size)}
			off = r.resync(seg, buf, st, off+frameHeader, last, f)
			continue
		}
		rec := f.rec
		want := chainCRC(r.prevCRC, rec)
		flag := FlagNone
		if r.damaged {
			flag = FlagAfterDamage
		}
		switch {
		case RecordType(rec.GetType()) == RecordCRC:
			if r.chainKnown && rec.GetCrc() != r.prevCRC {
				seg.Stops = append(seg.Stops, &Stop{Segment: seg.Name, Offset: off, Cause: CauseCRCChain, ResumedAt: f.end(),
					Detail: fmt.Sprintf("segment opens with crc %08x, previous records ended with %08x", rec.GetCrc(), r.prevCRC)})
				r.damaged = true
				flag = FlagAfterDamage
			}
			r.prevCRC, r.chainKnown = rec.GetCrc(), true
		case !r.chainKnown:
			// First record after a resync: trust its CRC field as the new
			// chain value; the next record will check it.
			flag = FlagUnverified
			r.prevCRC, r.chainKnown = rec.GetCrc(), true
		case want != rec.GetCrc():
			// The frame is intact but the data changed under it. Assume its
			// CRC field survived, and see whether the next record chains.
			st := &Stop{Segment: seg.Name, Offset: off, Cause: CauseCRCMismatch,
				Detail: fmt.Sprintf("%s record: stored crc %08x, computed %08x", RecordType(rec.GetType()), rec.GetCrc(), want)}
			if next, ok := r.chainsAt(buf, f.end(), rec.GetCrc()); ok {
				st.ResumedAt, st.Skipped = next, f.end()-off
				seg.Stops = append(seg.Stops, st)
				r.take(seg, f, FlagCRCMismatch)
				r.damaged = true
				r.prevCRC = rec.GetCrc()
				if next < 0 {
					// It was the segment's last record.
					st.Skipped = f.end() - off
					if last && tornLooking(buf, st, f) {
						st.Detail = "last record only partly written (" + st.Detail + ")"
						st.Cause = CauseTornTail
					}
				}
				off = f.end()
				continue
			}
			off = r.resync(seg, buf, st, f.end(), last, f)
			continue
		default:
			r.prevCRC = want
		}
		r.take(seg, f, flag)
		off = f.end()
		seg.DataEnd = off
	}
}

// chainsAt reports whether a record at off chains from crc (the next record
// after a damaged one), or off is the clean end of the segment.
func (r *reader) chainsAt(buf []byte, off int64, crc uint32) (int64, bool) {
	f, cause := parseFrame(buf, off)
	if cause != "" {
		return 0, false
	}
	if f.zero {
		return -1, firstNonZero(buf, off) < 0
	}
	return off, f.rec.GetCrc() == chainCRC(crc, f.rec)
}

// resync records st and scans forward from 'from' (8-byte aligned, as every
// frame is) for the next plausible record: a frame in bounds, a record of a
// known type whose payload decodes, and either a successor that chains from
// its CRC or the clean end of the segment right after it. It returns the
// offset to continue reading at (the segment size when nothing was found).
// bad is the frame that failed, if any, used to tell a torn tail from damage.
func (r *reader) resync(seg *Segment, buf []byte, st *Stop, from int64, last bool, bad *frame) int64 {
	size := int64(len(buf))
	r.damaged = true
	seg.Stops = append(seg.Stops, st)
	from = (from + 7) &^ 7
	for p := from; p+frameHeader <= size; p += 8 {
		// Fast skip: a zero length can never start a record.
		if allZero(buf[p : p+frameHeader]) {
			continue
		}
		f, cause := parseFrame(buf, p)
		if cause != "" || f.zero || !plausible(f.rec) {
			continue
		}
		if _, ok := r.chainsAt(buf, f.end(), f.rec.GetCrc()); !ok {
			continue
		}
		st.ResumedAt = p
		st.Skipped = p - st.Offset
		// If the candidate happens to chain from the last good CRC, nothing
		// was lost in between and its data is verified.
		if r.chainKnown && f.rec.GetCrc() == chainCRC(r.prevCRC, f.rec) {
			r.prevCRC = f.rec.GetCrc()
			r.take(seg, f, FlagAfterDamage)
		} else {
			r.prevCRC, r.chainKnown = f.rec.GetCrc(), true
			r.take(seg, f, FlagUnverified)
		}
		seg.DataEnd = f.end()
		return f.end()
	}
	// Nothing valid after the damage in this segment.
	st.ResumedAt = -1
	end := size
	if nz := lastNonZero(buf); nz >= st.Offset {
		end = nz + 1
	}
	st.Skipped = max(end-st.Offset, 0)
	r.chainKnown = false
	if last && tornLooking(buf, st, bad) {
		st.Detail = "last record only partly written (" + st.Detail + ")"
		st.Cause = CauseTornTail
	}
	return size
}

// tornLooking reports whether a failure with nothing valid after it, in the
// last segment, looks like a write that never completed rather than damage:
// the file ends inside the record, a sector of it is still zeros, or only
// stray bytes follow the final zero frame.
func tornLooking(buf []byte, st *Stop, bad *frame) bool {
	if st.Cause == CauseDataAfterEnd {
		return true
	}
	if bad == nil {
		return false
	}
	if bad.pastEOF {
		return true
	}
	if bad.recLen > 0 && bad.off+frameHeader+bad.recLen+bad.padLen <= int64(len(buf)) {
		return hasZeroSector(buf[bad.off+frameHeader:bad.off+frameHeader+bad.recLen+bad.padLen], bad.off+frameHeader)
	}
	return false
}

func lastNonZero(buf []byte) int64 {
	for i := int64(len(buf)) - 1; i >= 0; i-- {
		if buf[i] != 0 {
			return i
		}
	}
	return -1
}

func frameDetail(f *frame, cause Cause, size int64) string {
	switch cause {
	case CauseLengthPastEOF:
		return fmt.Sprintf("record of %d bytes at 0x%x, file ends at 0x%x", f.recLen+f.padLen, f.off+frameHeader, size)
	case CauseBadLength:
		return fmt.Sprintf("length field %d, padding %d", f.recLen, f.padLen)
	case CauseUnknownType:
		return fmt.Sprintf("type %d", f.rec.GetType())
	case CauseUndecodable:
		return fmt.Sprintf("%d bytes are not a walpb.Record", f.recLen)
	}
	return ""
}

// plausible is the payload check a resync candidate must pass on top of a
// valid frame: random bytes sometimes decode as a walpb.Record, far more
// rarely as a record whose data is also the message its type says.
func plausible(rec *walpb.Record) bool {
	switch RecordType(rec.GetType()) {
	case RecordEntry:
		var e raftpb.Entry
		if proto.Unmarshal(rec.GetData(), &e) != nil {
			return false
		}
		return e.GetIndex() > 0 && e.GetTerm() > 0 && e.GetType() <= raftpb.EntryConfChangeV2
	case RecordState:
		var s raftpb.HardState
		return proto.Unmarshal(rec.GetData(), &s) == nil && s.GetTerm() > 0
	case RecordSnapshot:
		var s walpb.Snapshot
		return proto.Unmarshal(rec.GetData(), &s) == nil
	case RecordMetadata:
		var m etcdserverpb.Metadata
		return proto.Unmarshal(rec.GetData(), &m) == nil && m.GetNodeID() != 0
	case RecordCRC:
		return len(rec.GetData()) == 0
	}
	return false
}

// take decodes a record's payload into the Log.
func (r *reader) take(seg *Segment, f *frame, flag Flag) {
	rec := f.rec
	t := RecordType(rec.GetType())
	seg.Records.add(t)
	badPayload := func(err error) {
		if flag == FlagCRCMismatch {
			return // already reported; the payload is known to be damaged
		}
		seg.Stops = append(seg.Stops, &Stop{Segment: seg.Name, Offset: f.off, Cause: CauseBadPayload, ResumedAt: f.end(),
			Detail: fmt.Sprintf("%s record: %v", t, err)})
		r.damaged = true
	}
	switch t {
	case RecordMetadata:
		var m etcdserverpb.Metadata
		if err := proto.Unmarshal(rec.GetData(), &m); err != nil {
			badPayload(err)
			return
		}
		if flag == FlagCRCMismatch {
			return
		}
		if r.log.Metadata == nil {
			r.log.Metadata = &Metadata{NodeID: m.GetNodeID(), ClusterID: m.GetClusterID(), raw: rec.GetData()}
		} else if !bytes.Equal(r.log.Metadata.raw, rec.GetData()) {
			seg.Stops = append(seg.Stops, &Stop{Segment: seg.Name, Offset: f.off, Cause: CauseMetadataConflict, ResumedAt: f.end(),
				Detail: fmt.Sprintf("node %x cluster %x, first metadata said node %x cluster %x",
					m.GetNodeID(), m.GetClusterID(), r.log.Metadata.NodeID, r.log.Metadata.ClusterID)})
			r.damaged = true
		}
	case RecordEntry:
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(rec.GetData(), e); err != nil {
			badPayload(err)
			return
		}
		// The Log keeps where the record is and a checksum of it, not the
		// data: Load reads it again when it is needed.
		ent := &Entry{Index: e.GetIndex(), Term: e.GetTerm(), Type: e.GetType(), Size: len(e.GetData()),
			Segment: seg.Name, Offset: f.off, Flag: flag,
			seg: r.seg, recLen: f.recLen, sum: crc32.Checksum(rec.GetData(), crcTable)}
		if flag == FlagCRCMismatch {
			r.log.Suspect = append(r.log.Suspect, ent)
			return
		}
		if seg.FirstIndex == 0 || e.GetIndex() < seg.FirstIndex {
			seg.FirstIndex = e.GetIndex()
		}
		seg.LastIndex = max(seg.LastIndex, e.GetIndex())
		r.log.addEntry(ent)
	case RecordState:
		var s raftpb.HardState
		if err := proto.Unmarshal(rec.GetData(), &s); err != nil {
			badPayload(err)
			return
		}
		if flag == FlagCRCMismatch {
			return
		}
		r.log.HardStates++
		r.log.HardState = &HardState{Term: s.GetTerm(), Vote: s.GetVote(), Commit: s.GetCommit(), Segment: seg.Name, Offset: f.off, Flag: flag}
	case RecordSnapshot:
		var s walpb.Snapshot
		if err := proto.Unmarshal(rec.GetData(), &s); err != nil {
			badPayload(err)
			return
		}
		if flag == FlagCRCMismatch {
			return
		}
		r.log.Snapshots = append(r.log.Snapshots, Snapshot{Index: s.GetIndex(), Term: s.GetTerm(), ConfState: s.GetConfState(),
			Voters: s.GetConfState().GetVoters(), Learners: s.GetConfState().GetLearners(), Segment: seg.Name, Offset: f.off, Flag: flag})
	}
}

// addEntry appends e with raft's overwrite semantics (etcd's ReadAll:
// ents = append(ents[:offset], e)): an entry at or below the last index
// replaces the log from its index on. A flagged entry may not replace
// entries that were read without damage: it goes to Suspect instead.
func (l *Log) addEntry(e *Entry) {
	n := len(l.Entries)
	if n == 0 || e.GetIndex() > l.Entries[n-1].GetIndex() {
		l.Entries = append(l.Entries, e)
		return
	}
	i := sort.Search(n, func(i int) bool { return l.Entries[i].GetIndex() >= e.GetIndex() })
	if e.Flag != FlagNone {
		for _, old := range l.Entries[i:] {
			if old.Flag == FlagNone {
				l.Suspect = append(l.Suspect, e)
				return
			}
		}
	}
	l.Overwritten += n - i
	l.Entries = append(l.Entries[:i], e)
}

// gaps lists the index runs missing between consecutive entries.
func gaps(ents []*Entry) []Gap {
	var out []Gap
	for i := 1; i < len(ents); i++ {
		a, b := ents[i-1].GetIndex(), ents[i].GetIndex()
		if b > a+1 {
			out = append(out, Gap{From: a + 1, To: b - 1})
		}
	}
	return out
}
