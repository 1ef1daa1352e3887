package salvage

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/spill"
	berrors "go.etcd.io/bbolt/errors"
)

// Counter receives progress in pages; see pagewalk.Counter.
type Counter = pagewalk.Counter

// Options tune a salvage.
type Options struct {
	// Aggressive keeps carved records that may be compaction garbage,
	// flagged as uncertain, instead of leaving them out.
	Aggressive bool
	// Force replaces an existing output.
	Force bool
	// Progress, if set, is told about pages read.
	Progress Counter
	// MaxListed caps the per-key lists in the report (possibly stale,
	// uncertain); counts stay exact. 0 means 10000.
	MaxListed int
	// Context, if set, stops the salvage when it is cancelled: checked
	// between phases, every 1024 carved pages and per written transaction. The
	// temp output is removed and nothing is published.
	Context context.Context
	// SkipCheck leaves bbolt's check of the new file to the caller, who
	// checks what it makes of it anyway (repair checks the member dir's
	// db after the restore has written to it): a second full read of a
	// multi-GiB file buys nothing. Report.Verified stays false.
	SkipCheck bool
	// PageSize is the new file's page size in bytes; 0 chooses
	// (OutputPageSize). ValidPageSize says which sizes are allowed.
	PageSize int
	// CompactHint, if above 0, is the compaction revision to judge carved
	// records against when the file itself gives none (its meta bucket
	// was not reached), and CompactHintSource says where it came from
	// (repair: the WAL's newest compaction entry). It must be at or above
	// the db's own: a higher one only holds more records to the evidence.
	CompactHint       int64
	CompactHintSource string
}

// etcdBuckets are created in every salvaged etcd db, so etcd finds them.
var etcdBuckets = pagewalk.EtcdBuckets

// Run salvages the bbolt file at in into a new file at out.
func Run(in, out string, opts Options) (*Report, error) {
	if err := CheckOutput(in, out, opts.Force); err != nil {
		return nil, err
	}
	if err := ValidPageSize(opts.PageSize); err != nil {
		return nil, err
	}
	f, err := pagewalk.Open(in)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sp := spill.For(filepath.Dir(out), f.Size())
	defer sp.Close()
	res, err := f.Scan(pagewalk.Options{Progress: opts.Progress, Context: opts.Context, Spill: sp})
	if err != nil {
		return nil, err
	}
	return FromScan(res, in, out, opts)
}

// FromScan salvages from a finished scan. The Report is valid whenever
// the error is nil, whatever was lost.
func FromScan(res *pagewalk.Result, in, out string, opts Options) (*Report, error) {
	return fromScan(res, in, out, opts, "")
}

// fromScan salvages; distrust, when set, says why the walked key bucket is
// not taken as the last state of the data: every record is then carved and
// decided by evidence, as if the whole bucket were damaged.
func fromScan(res *pagewalk.Result, in, out string, opts Options, distrust string) (*Report, error) {
	// Before any work: bbolt would take a page size salvage must not write.
	if err := ValidPageSize(opts.PageSize); err != nil {
		return nil, err
	}
	if opts.MaxListed == 0 {
		opts.MaxListed = 10000
	}
	rep := &Report{
		Schema: ReportSchema, Input: in, Output: out, Aggressive: opts.Aggressive,
		Source: res.Report.ChosenReason, Findings: len(res.Report.Findings), ScanClean: res.Report.Clean,
		LostRevisions: [][2]int64{}, LostReasons: []string{}, PossiblyStale: []StaleKey{},
		Uncertain: []UncertainRecord{}, LeftOut: []LeftOutKey{}, Unverified: []UnverifiedRecord{}, Conflicts: []Conflict{}, Ledger: []ResourceLedger{}, Notes: []string{}, Next: []string{},
	}
	etcd := res.Report.Etcd
	rep.ConsistentIndex, rep.Term = etcd.ConsistentIndex, etcd.Term
	rep.zeroed = zeroedSuspects(res)

	if err := Interrupted(opts.Context, "carving"); err != nil {
		return nil, err
	}
	compact, compactSource := compactRevision(res, etcd)
	if compactSource == unknownCompactSource && opts.CompactHint > 0 {
		compact, compactSource = opts.CompactHint, opts.CompactHintSource
	}
	evCompact := compact
	if compactSource == unknownCompactSource {
		evCompact = unknownCompact
	}
	cr := carve(opts.Context, res, opts.Progress, distrust != "", evCompact)
	if err := Interrupted(opts.Context, "carving"); err != nil {
		return nil, err
	}
	if cr.err != nil {
		return nil, cr.err
	}
	rep.Records.CandidatePages, rep.Records.CarvedPages, rep.Records.Rejected = cr.cands, cr.pages, cr.rejected
	rep.Records.Duplicates = cr.dups
	rep.Conflicts = append(rep.Conflicts, cr.conflicts...)
	for _, rev := range cr.zeroed {
		rep.zeroed[rev] = true
	}

	isEtcd := etcd.IsEtcd || len(cr.recs) > 0
	if isGeneric(res, len(cr.recs) > 0) {
		return fromScanGeneric(res, in, out, opts)
	}
	rep.Layout = res.Report.Layout
	rep.CompactRevision, rep.CompactSource = compact, compactSource

	tmp, w, err := openOutput(out, res, opts)
	if err != nil {
		return nil, err
	}
	rep.PageSize = w.db.Info().PageSize
	// The bar counts records written against every record reached or
	// carved (the held-back carved records may not all be written: the
	// bar can end short of its total, never past it).
	StartPhase(opts.Progress, "writing the new db", recordsToWrite(res, cr))
	w.progress = opts.Progress
	// Whatever ends this early (an error, an interrupt, a panic from a bug
	// on its way to the CLI's recover) leaves no temp file behind.
	published := false
	defer func() {
		if !published {
			w.abort()
			os.Remove(tmp)
		}
	}()
	fail := func(err error) (*Report, error) {
		w.abort()
		os.Remove(tmp)
		return nil, err
	}
	rep.TreeDistrusted = distrust
	if err := copyOtherBuckets(res, w, rep, isEtcd); err != nil {
		return fail(err)
	}
	ks, err := mergeKeyBucket(res, cr, w, rep, opts, evCompact)
	if err != nil {
		return fail(err)
	}
	if why := treeClaim(res, cr, ks); why != "" && distrust == "" {
		// The tree that walked is not the last state of the data: start
		// again, taking nothing on its word.
		w.abort()
		os.Remove(tmp)
		published = true // nothing left to clean up
		return fromScan(res, in, out, opts, why)
	}
	if err := w.close(); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	StartPhase(opts.Progress, "checking the new db", -1)
	// bbolt's check of the new file runs on another core while the report
	// is worked out: neither needs the other.
	checked := make(chan error, 1)
	if opts.SkipCheck {
		checked <- nil
	} else {
		go func() { checked <- verify(tmp) }()
	}
	lostRanges(res, ks, cr, rep)
	judgeKeys(ks, rep, opts)
	settleUnverified(res, rep)
	noteFrames(rep)
	if err := <-checked; err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("the written db failed bbolt's check (a bug in boltfix): %w", err)
	}
	rep.Verified = !opts.SkipCheck
	// The last point where an interrupt leaves nothing behind.
	if err := Interrupted(opts.Context, "checking the new db"); err != nil {
		return nil, err
	}
	if err := publish(tmp, out); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	published = true
	rep.Complete = len(rep.LostRevisions) == 0 && rep.Records.Uncertain == 0 && rep.UnverifiedCount == 0 && !anyDamagedBucket(rep)
	nextSteps(rep)
	return rep, nil
}

// recordsToWrite is at most how many records the salvage writes.
func recordsToWrite(res *pagewalk.Result, cr *carveResult) int64 {
	n := int64(len(cr.recs))
	for _, b := range res.Buckets {
		n += int64(b.Records)
	}
	return n
}

func anyDamagedBucket(rep *Report) bool {
	for _, b := range rep.Buckets {
		if (b.Damaged || b.Missing || b.LeftOut > 0) && !(len(b.Bucket) == 1 && b.Bucket[0] == "key") {
			return true
		}
	}
	return false
}

// compactRevision is the finished compaction the carving rules use.
func compactRevision(res *pagewalk.Result, e *pagewalk.EtcdSummary) (int64, string) {
	switch {
	case e.ScheduledCompact != nil && (e.FinishedCompact == nil || *e.ScheduledCompact > *e.FinishedCompact):
		// An interrupted compaction: etcd finishes it when it starts, so
		// what it would remove is judged against it (docs/recovery.md §3).
		return *e.ScheduledCompact, "meta/scheduledCompactRev (a compaction etcd finishes when it starts)"
	case e.FinishedCompact != nil:
		return *e.FinishedCompact, "meta/finishedCompactRev"
	case res.Bucket("meta") != nil:
		return 0, "never compacted (meta has no finishedCompactRev)"
	}
	return 0, unknownCompactSource
}

// unknownCompactSource is the report's compact_source when no compaction
// revision can be read.
const unknownCompactSource = "unknown: the meta bucket was not reached; every carved record is held to the evidence (any may be compaction garbage) and every revision not proven is reported lost"

// unknownCompact stands for the compaction revision when it is unknown:
// above every revision, so that every carved record is held to the
// evidence. A record written with no proof could be compaction garbage,
// and its key deleted: writing it back would resurrect the key.
const unknownCompact = int64(1) << 62

// copyOtherBuckets writes every reached bucket except key, from the one
// tree the scan walked, and creates etcd's buckets that were not reached.
func copyOtherBuckets(res *pagewalk.Result, w *dbWriter, rep *Report, isEtcd bool) error {
	seen := map[string]bool{}
	for _, b := range res.Buckets {
		if len(b.Path) == 0 || b.IsKeyBucket() {
			continue
		}
		if string(b.Path[0]) == "key" {
			// A bucket inside key (a flipped bucket flag): etcd reads
			// every entry of key as a revision record and panics on
			// its name ("invalid revision length").
			rep.Buckets = append(rep.Buckets, BucketCount{Bucket: pathStrings(b.Path), LeftOut: b.Records, Damaged: true})
			rep.Notes = appendCapped(rep.Notes, fmt.Sprintf("bucket %q inside the key bucket left out: etcd cannot read it", pathStrings(b.Path)))
			continue
		}
		bc := BucketCount{Bucket: pathStrings(b.Path), Damaged: b.Damaged}
		bkt, err := w.bucket(b.Path)
		if isRefused(err) {
			// A damaged tree can hold what bbolt will not store: an empty
			// bucket name, a bucket and a record under one key.
			bc.LeftOut = b.Records
			rep.Notes = appendCapped(rep.Notes, fmt.Sprintf("bucket %q left out: %v", bc.Bucket, err))
			rep.Buckets = append(rep.Buckets, bc)
			continue
		} else if err != nil {
			return err
		}
		if err := bkt.SetSequence(b.Sequence); err != nil {
			return err
		}
		err = res.ForEach(b, func(k, v []byte) error {
			bc.Reached++
			err := w.put(b.Path, bytes.Clone(k), bytes.Clone(v), 0.5)
			if isRefused(err) {
				bc.LeftOut++
				rep.Notes = appendCapped(rep.Notes, fmt.Sprintf("record %q in bucket %q left out: %v", printableKey(k), bc.Bucket, err))
				return nil
			}
			if err == nil {
				bc.Written++
			}
			return err
		})
		if err != nil {
			return err
		}
		if len(b.Path) == 1 {
			seen[string(b.Path[0])] = true
		}
		rep.Buckets = append(rep.Buckets, bc)
	}
	if isEtcd {
		for _, name := range etcdBuckets {
			if seen[name] || name == "key" {
				continue
			}
			if _, err := w.bucket([][]byte{[]byte(name)}); err != nil {
				return err
			}
			rep.Buckets = append(rep.Buckets, BucketCount{Bucket: []string{name}, Missing: true})
		}
	}
	return w.commit()
}

func pathStrings(p [][]byte) []string {
	out := make([]string, len(p))
	for i, s := range p {
		out[i] = string(s)
	}
	return out
}

// keyState is what salvage knows about one etcd key. It holds no pointer
// (the collector skips the table of them): the left-out object's name is
// an index into keyTable.objs.
type keyState struct {
	latest       pagewalk.Revision // newest record, any source
	latestCarved bool
	written      bool              // some record of the key is in the output
	leftOutObj   int32             // the Kubernetes object of its newest left-out record: keyTable.objs[leftOutObj-1], 0 none
	wLatest      pagewalk.Revision // the newest of those
	maxLE        pagewalk.Revision // newest record at or below the compaction
	hasLE        bool
	hasAbove     bool      // a record above the compaction exists
	uncertain    bool      // known only from left-out records
	name         spill.Ref // the key, in keyTable.names
}

type keySpace struct {
	keys    keyTable
	first   int64
	last    int64
	compact int64
	gaps    [][2]int64 // missing main revisions above the compaction
	// keyLost are the main-revision ranges between the written reached
	// records around a run of records whose keys were changed on disk
	// (not a revision): the lost records' revisions lie there.
	keyLost  [][2]int64
	prevMain int64
	// undecodable are main revisions of reached records left out because
	// their value is not an mvccpb.KeyValue.
	undecodable []int64
	// subs tracks, above the compaction, each main revision's sub-revisions.
	subs     map[int64]*subInfo
	closedAt map[int64]int64
	// carved are the carved records, in revision order (hasCarved).
	carved []carved
	// tiled marks the findings whose damaged range a live tiling resolved:
	// every live record under them is known, so they lose nothing.
	tiled map[int]bool
	// decided are the main revisions below the compaction of which a carved
	// record was decided (written as live, or proven compacted), sorted: a
	// damaged range below the compaction loses nothing at those.
	decided []int64
	// decidedRevs are the revisions decided (main, sub), in the order
	// decided: a list of numbers, not a map of lists (a damaged db of a
	// few GiB decides millions); settleDecided sorts it.
	decidedRevs [][2]int64
	// distrust says why the walked key bucket was not taken as the last
	// state (empty: it was).
	distrust string
	// absentOutside are records on unreached pages inside the intact
	// tree's range that the tree lacks, in revision-key order.
	absentOutside []carved
	// ambiguous are main revisions of records under a tiled range that
	// some fitting answers take as live and others not.
	ambiguous []int64
}

// subInfo is what salvage knows of one transaction's sub-revisions.
type subInfo struct {
	min, max, count int64
	closed          int64 // the largest sub some page shows followed by another revision; -1 none
}

// sub records that revision rev is in the output.
func (ks *keySpace) sub(rev pagewalk.Revision) {
	if rev.Main <= ks.compact {
		return
	}
	si := ks.subs[rev.Main]
	if si == nil {
		si = &subInfo{min: rev.Sub, max: rev.Sub, closed: -1}
		ks.subs[rev.Main] = si
	}
	si.min, si.max = min(si.min, rev.Sub), max(si.max, rev.Sub)
	si.count++
}

// closes notes that a page holds prev directly followed by next: nothing
// can ever come between them (new revisions only go after all others).
func (ks *keySpace) closes(prev, next pagewalk.Revision) {
	// Transaction ends are asked about only above the compaction and for
	// revisions with carved records: a healthy db of a few GiB has
	// millions of others.
	if prev.Main <= ks.compact && !ks.hasCarved(prev.Main) {
		return
	}
	if ks.closedAt == nil {
		ks.closedAt = map[int64]int64{}
	}
	noteClosed(ks.closedAt, prev, next)
}

// hasCarved reports whether a carved record has main revision m.
func (ks *keySpace) hasCarved(m int64) bool {
	i := sort.Search(len(ks.carved), func(i int) bool { return ks.carved[i].rev.Main >= m })
	return i < len(ks.carved) && ks.carved[i].rev.Main == m
}

// noteClosed records in closedAt (main revision -> the largest sub some
// page shows followed by another revision) that prev is directly followed
// by next.
func noteClosed(closedAt map[int64]int64, prev, next pagewalk.Revision) {
	if prev.Main == next.Main {
		return
	}
	if c, ok := closedAt[prev.Main]; !ok || prev.Sub > c {
		closedAt[prev.Main] = prev.Sub
	}
}

// wrote notes that a record of etcdKey at rev is in the output.
func (ks *keySpace) wrote(etcdKey []byte, rev pagewalk.Revision) {
	s := ks.keys.get(etcdKey)
	if !s.written || revLess(s.wLatest, rev) {
		s.wLatest, s.written = rev, true
	}
}

func (ks *keySpace) observe(etcdKey []byte, rev pagewalk.Revision, carved bool) {
	s := ks.keys.add(etcdKey)
	if s.latest.Main == 0 || revLess(s.latest, rev) {
		s.latest, s.latestCarved = rev, carved
	}
	if !carved {
		ks.wrote(etcdKey, rev)
	}
	if rev.Main <= ks.compact {
		if !s.hasLE || revLess(s.maxLE, rev) {
			s.maxLE, s.hasLE = rev, true
		}
	} else {
		s.hasAbove = true
	}
}

// dense tracks main revisions above the compaction in stream order: each
// write transaction takes the next main revision, so a gap is lost data.
func (ks *keySpace) dense(main int64) {
	if ks.first == 0 || main < ks.first {
		ks.first = main
	}
	ks.last = max(ks.last, main)
	if main <= ks.compact {
		return
	}
	if main > ks.prevMain+1 {
		ks.gaps = append(ks.gaps, [2]int64{ks.prevMain + 1, main - 1})
	}
	ks.prevMain = max(ks.prevMain, main)
}

func revLess(a, b pagewalk.Revision) bool {
	if a.Main != b.Main {
		return a.Main < b.Main
	}
	return a.Sub < b.Sub
}

var keyPath = [][]byte{[]byte("key")}

// mergeKeyBucket streams the reached key-bucket records (in key order)
// merged with the sorted carved ones into the new db, and holds back the
// carved records below the compaction for judgement once every record has
// been seen. compact is the revision carved records are judged against
// (unknownCompact when the file and the caller give none).
func mergeKeyBucket(res *pagewalk.Result, cr *carveResult, w *dbWriter, rep *Report, opts Options, compact int64) (*keySpace, error) {
	ks := &keySpace{keys: newKeyTable(res.Spill()), compact: compact, prevMain: max(rep.CompactRevision, 1), subs: map[int64]*subInfo{}, distrust: rep.TreeDistrusted}
	// What the carved pages prove about transaction ends (they are only
	// read from here on).
	ks.closedAt = cr.closedAt
	ks.carved = cr.recs
	if _, err := w.bucket(keyPath); err != nil {
		return nil, err
	}
	// From here bbolt works on a goroutine of its own while the records
	// are judged (writequeue.go); the commit at the end waits for it.
	if queuePuts {
		w.startQueue()
	}
	kb := res.Bucket("key")
	reachedBC := BucketCount{Bucket: []string{"key"}}
	if kb == nil {
		reachedBC.Missing = true
	} else {
		reachedBC.Damaged = kb.Damaged
	}
	// The carved records below the compaction are held back and judged
	// once every record has been seen. cr.recs is in revision order, so
	// they are its first nHeld records: a view, not a copy (a damaged db
	// of a few GiB carves millions).
	nHeld := 0
	ci, oi := 0, 0
	takeCarved := func(c carved) error {
		etcdKey := cr.etcdKey(&c)
		ks.observe(etcdKey, c.rev, true)
		ks.dense(c.rev.Main)
		if c.rev.Main < ks.compact {
			nHeld++
			return nil
		}
		rep.Records.Carved++
		reachedBC.Carved++
		rep.Records.Written++
		ks.sub(c.rev)
		ks.wrote(etcdKey, c.rev)
		revKey := c.revKey()
		v, err := cr.value(&c)
		if err != nil {
			return err
		}
		witnessCarved(rep, cr, &c, etcdKey, revKey, v)
		return w.put(keyPath, revKey, v, 1.0)
	}
	var prevRev *pagewalk.Revision
	var prevKey []byte // a copy: the record's buffer goes back after its commit
	badKey := false    // records with changed keys since lastWritten
	lastWritten := int64(0)
	damageAfter := map[string]bool{}
	for _, f := range res.Report.Findings {
		if f.Lost != nil && f.Lost.After != nil && len(f.Bucket) == 1 && f.Bucket[0] == "key" {
			if k, err := hex.DecodeString(f.Lost.After.Hex); err == nil {
				damageAfter[string(k)] = true
			}
		}
	}
	if kb != nil {
		// The leaves are read into lent buffers, given back after each
		// commit (pagewalk/lend.go). Nothing below keeps k or v past
		// the put: the key table and the report copy what they keep.
		w.lender = &pagewalk.Lender{Poison: poisonLentBuffers, Discard: lentReturnSlack != 0}
		err := res.ForEachLent(kb, w.lender, func(k, v []byte, lease pagewalk.Lease) error {
			// Consecutive reached records are neighbours (the tree says
			// so) unless the walk found damage right after the first.
			rev, revOK := pagewalk.ParseRevision(k)
			// A key that is not a revision was changed on disk (random
			// bytes over the page that holds it): it must not move the
			// merge with the carved records, which takes the stream to be
			// in key order (a garbage key that sorted high took every
			// carved copy below it as absent from the tree, and the tree
			// was distrusted whole). Its revision lies between the written
			// records around it. (A key changed into another revision is
			// caught by its value's mod_revision, below.)
			if !revOK {
				rep.Records.Rejected++
				rep.Notes = appendCapped(rep.Notes, fmt.Sprintf("left out a key-bucket record whose key %x is not a revision", k))
				badKey = true
				return nil
			}
			if prevRev != nil && !damageAfter[string(prevKey)] {
				ks.closes(*prevRev, rev)
			}
			prevRev, prevKey = &rev, append(prevKey[:0], k...)
			for ci < len(cr.recs) && cr.recs[ci].compareKey(k) < 0 {
				if err := takeCarved(cr.recs[ci]); err != nil {
					return err
				}
				ci++
			}
			if ci < len(cr.recs) && cr.recs[ci].compareKey(k) == 0 {
				if same, err := cr.sameValue(&cr.recs[ci], v); err != nil {
					return err
				} else if same {
					rep.Records.Duplicates++
				}
				ci++
			}
			for oi < len(cr.outside) && cr.outside[oi].compareKey(k) < 0 {
				ks.absentOutside = append(ks.absentOutside, cr.outside[oi])
				oi++
			}
			if oi < len(cr.outside) && cr.outside[oi].compareKey(k) == 0 {
				oi++
			}
			// A second witness: an identical carved copy. Copies that
			// differ are settled by how many agree.
			witnessed := false
			if cs := cr.copies.of(k); len(cs) > 0 {
				h := valueHash(v)
				for _, c := range cs {
					witnessed = witnessed || c.hash == h
				}
				if !witnessed && revOK {
					nv, from, page, why := chooseCopy(res, k, rev, v, cs)
					pages := make([]uint64, len(cs))
					for j, x := range cs {
						pages[j] = x.page
					}
					rep.Conflicts = append(rep.Conflicts, Conflict{Revision: rev, Pages: pages, KeptPage: page, KeptFrom: from, Different: why})
					if from == "carved" {
						v = nv
						witnessed = countHash(cs, valueHash(nv)) >= 2
					}
				}
			}
			// etcd decodes every key-bucket record when it starts and
			// panics on one it cannot: such a record is left out, and its
			// revision reported lost.
			kv, err := decodeRecord(rev, v)
			if errors.Is(err, errNotKeyValue) || len(kv.Key) == 0 {
				rep.Records.Rejected++
				ks.undecodable = append(ks.undecodable, rev.Main)
				return nil
			}
			if err != nil {
				// A put's mod_revision is its own revision, create <= mod,
				// version > 0: a record that breaks this was changed on
				// disk, in its key or its value. Written under a flipped key
				// it would move etcd's current revision anywhere; left out,
				// the revision it claims either way is reported lost.
				rep.Records.Inconsistent++
				rep.Notes = appendCapped(rep.Notes, fmt.Sprintf("record %s decodes but is inconsistent (%v): left out", rev, err))
				ks.undecodable = append(ks.undecodable, rev.Main)
				if kv.ModRevision > 0 && kv.ModRevision != rev.Main {
					ks.undecodable = append(ks.undecodable, kv.ModRevision)
				}
				return nil
			}
			rep.Records.Reached++
			reachedBC.Reached++
			rep.Records.Written++
			unframed := !rev.Tombstone && unframedValue(rep, kv.Key, kv.Value)
			if !witnessed {
				noWitness(rep, kv.Key, rev, unframed)
			}
			ks.observe(kv.Key, rev, false)
			ks.dense(rev.Main)
			ks.sub(rev)
			if badKey {
				// Records whose keys were changed lay between the last
				// written record and this one (a written record's key
				// agrees with its value: it was not changed).
				ks.keyLost = append(ks.keyLost, [2]int64{max(lastWritten, 1), rev.Main})
				badKey = false
			}
			lastWritten = rev.Main
			return w.putLent(keyPath, k, v, 1.0, lease)
		})
		if err != nil {
			return nil, err
		}
	}
	if badKey {
		// Changed keys after the last written record: their revisions
		// lie anywhere after it.
		ks.keyLost = append(ks.keyLost, [2]int64{max(lastWritten, 1), 0})
	}
	for ; ci < len(cr.recs); ci++ {
		if err := takeCarved(cr.recs[ci]); err != nil {
			return nil, err
		}
	}
	ks.absentOutside = append(ks.absentOutside, cr.outside[oi:]...)
	// Judge the held-back records now that every record has been seen.
	held := cr.recs[:nHeld]
	for _, c := range held {
		if c.rev.Main >= ks.compact {
			return nil, fmt.Errorf("carved records out of revision order at %s (a bug in boltfix)", c.rev)
		}
	}
	if err := judgeHeld(res, cr, ks, held, w, rep, &reachedBC, opts); err != nil {
		return nil, err
	}
	reachedBC.Written = rep.Records.Written
	rep.Buckets = append([]BucketCount{reachedBC}, rep.Buckets...)
	rep.FirstRevision, rep.LastRevision = ks.first, ks.last
	err := w.commit()
	// Every lent chunk's records are committed (commit drained the
	// queue): the chunks kept for reuse go to the collector instead of
	// staying for the rest of the salvage (64 MiB at the peak of a
	// damaged 8 GiB db).
	w.lender = nil
	return ks, err
}

// lostRanges names every main-revision range that may hold lost records.
func lostRanges(res *pagewalk.Result, ks *keySpace, cr *carveResult, rep *Report) {
	type lr struct {
		r      [2]int64
		reason string
	}
	var out []lr
	for _, m := range ks.undecodable {
		// A revision past every written one came from a flipped key: no
		// record was ever there.
		if m >= 1 && m <= max(ks.last, 1) {
			out = append(out, lr{[2]int64{m, m}, "a reached record does not decode, or disagrees with its revision (etcd would panic on it, or move its revision): left out"})
		}
	}
	for _, r := range cr.undecodable {
		if r.Main >= 1 && r.Main <= max(ks.last, 1) {
			out = append(out, lr{[2]int64{r.Main, r.Main}, "a carved record does not decode, and no copy of it does: left out"})
		}
	}
	for _, m := range ks.ambiguous {
		out = append(out, lr{[2]int64{m, m}, "a record that two copies of its key range disagree on, and nothing in the file tells which copy is newer: left out (it may be live, or deleted and compacted)"})
	}
	for _, g := range ks.gaps {
		out = append(out, lr{g, "main revisions missing above the compaction point (every write takes the next one)"})
	}
	for _, g := range ks.keyLost {
		out = append(out, lr{g, "a reached record's key was changed on disk (it is not a revision): left out; its revision lies between the written records around it"})
	}
	C := ks.compact
	if C == unknownCompact {
		// Every revision no record proves may have lost records.
		C = max(ks.last, 1)
	}
	below := " below the compaction point:"
	if ks.compact == unknownCompact {
		below = ""
	}
	openTop := false
	topReason := "a damaged page held the newest records: revisions after the newest surviving one may be lost (the WAL can tell: boltfix repair)"
	damaged := func(from, to int64, what string) {
		if from <= C && C > 0 {
			hi := C
			if to != 0 && to < C {
				hi = to
			}
			for _, r := range ks.undecidedIn(max(from, 1), hi) {
				out = append(out, lr{r, what + below + " records there cannot be proven complete"})
			}
		}
		if to == 0 {
			openTop = true
		}
	}
	if why := olderTree(res.Report); why != "" {
		openTop = true
		topReason = why
	}
	kb := res.Bucket("key")
	if kb == nil {
		damaged(1, 0, "the key bucket was not reached, every record was carved:")
	}
	if ks.compact == unknownCompact {
		damaged(1, 0, "the compaction point is unknown (the meta bucket was not reached):")
	}
	if ks.distrust != "" {
		damaged(1, max(C, 1), "the walked key bucket is not the last state of the data ("+ks.distrust+"), every record was carved:")
	}
	for i, f := range res.Report.Findings {
		if f.Lost == nil || f.Lost.Revisions == nil || ks.tiled[i] {
			continue
		}
		where := string(f.Kind)
		if f.Page != nil {
			where = fmt.Sprintf("%s at page %d", f.Kind, *f.Page)
		}
		damaged(f.Lost.Revisions.From, f.Lost.Revisions.To, where+":")
	}
	// Later sub-revisions of a transaction can only be missing from the
	// file with a leaf that is gone: when no leaf can be (every page is a
	// node, part of one, or a lost branch), every sub-revision on disk was
	// seen, reached or carved.
	leafLost, openEnds := res.LeafMayBeLost(), 0
	// Above the compaction, density finds every wholly missing main
	// revision; a main revision that kept some of its sub-revisions is
	// complete only if its subs run from 0 without a hole and some page
	// shows its last sub followed by another revision.
	for m, si := range ks.subs {
		if c, ok := ks.closedAt[m]; ok {
			si.closed = c
		}
		switch {
		case si.min > 0 || si.count < si.max-si.min+1:
			out = append(out, lr{[2]int64{m, m}, "sub-revisions missing inside this revision's transaction"})
		case si.closed < si.max && m != ks.last && leafLost != "":
			out = append(out, lr{[2]int64{m, m}, "no page shows where this revision's transaction ends: later sub-revisions may be lost"})
			openEnds++
		}
	}
	if openEnds > 0 {
		rep.Notes = appendCapped(rep.Notes, fmt.Sprintf("%d revisions are reported lost only because no page shows where their transaction ends, and a leaf may be gone: %s", openEnds, leafLost))
	}
	if openTop {
		// The newest surviving revision itself may have lost later subs.
		out = append(out, lr{[2]int64{max(ks.last, 1), 0}, topReason})
	}
	all := make([]LostRange, len(out))
	for i, x := range out {
		all[i] = LostRange{From: x.r[0], To: x.r[1], Why: x.reason}
	}
	rep.LostRevisions, rep.LostReasons = MergeLost(all)
}

// olderTree says why the walked tree may predate the last commit: it is not
// the newest valid meta's, or the other meta is unreadable (and may have
// been newer), or no meta was usable. Records committed after it are then
// found only by carving, and the newest of them may be gone.
func olderTree(r *pagewalk.Report) string {
	if r.Chosen < 0 {
		return "no usable meta page: the tree walked may not be the last committed one, so revisions after the newest surviving one may be lost"
	}
	chosen, other := r.Metas[r.Chosen], r.Metas[1-r.Chosen]
	switch {
	case !other.Valid:
		return fmt.Sprintf("meta %d is invalid and may have been the newer commit: revisions after the newest surviving one may be lost", other.Page)
	case other.Meta.Txid > chosen.Meta.Txid:
		return fmt.Sprintf("the newest meta (%d, txid %d) could not be walked: revisions after the newest surviving one may be lost", other.Page, other.Meta.Txid)
	}
	return ""
}

// appendCapped adds a note unless there are already many: notes are for
// people, the counts carry the totals.
func appendCapped(notes []string, s string) []string {
	if len(notes) < 50 {
		return append(notes, s)
	}
	return notes
}

// isRefused reports whether bbolt refused a record or bucket for its shape
// (empty or oversized key, oversized value, a bucket where a record is or
// the other way round): damage in the input, not a failure of the output.
func isRefused(err error) bool {
	return err != nil && (errors.Is(err, berrors.ErrKeyRequired) || errors.Is(err, berrors.ErrKeyTooLarge) ||
		errors.Is(err, berrors.ErrValueTooLarge) || errors.Is(err, berrors.ErrIncompatibleValue) ||
		errors.Is(err, berrors.ErrBucketNameRequired) || errors.Is(err, berrors.ErrBucketExists))
}

func printableKey(k []byte) string {
	if len(k) > 64 {
		k = k[:64]
	}
	return string(k)
}

// decide notes that the record at rev was decided (written as live, or
// proven compacted).
func (ks *keySpace) decide(rev pagewalk.Revision) {
	ks.decidedRevs = append(ks.decidedRevs, [2]int64{rev.Main, rev.Sub})
}

// settleDecided keeps, of the decided main revisions, those whose whole
// transaction is accounted for: sub-revisions 0..n all decided, and some
// page shows the last one followed by another revision.
func (ks *keySpace) settleDecided() {
	d := ks.decidedRevs
	sort.Slice(d, func(i, j int) bool { return d[i][0] < d[j][0] || d[i][0] == d[j][0] && d[i][1] < d[j][1] })
	for i := 0; i < len(d); {
		m := d[i][0]
		j := i
		ok := true
		for ; j < len(d) && d[j][0] == m; j++ {
			ok = ok && d[j][1] == int64(j-i)
		}
		if c, closed := ks.closedAt[m]; ok && closed && c == d[j-1][1] {
			ks.decided = append(ks.decided, m)
		}
		i = j
	}
	sort.Slice(ks.decided, func(i, j int) bool { return ks.decided[i] < ks.decided[j] })
}

// undecidedIn splits [from, to] around the main revisions whose records were
// decided: what is left may hold records that were lost.
func (ks *keySpace) undecidedIn(from, to int64) [][2]int64 {
	var out [][2]int64
	i := sort.Search(len(ks.decided), func(i int) bool { return ks.decided[i] >= from })
	for ; i < len(ks.decided) && ks.decided[i] <= to; i++ {
		if d := ks.decided[i]; d > from {
			out = append(out, [2]int64{from, d - 1})
		}
		from = ks.decided[i] + 1
	}
	if from <= to {
		out = append(out, [2]int64{from, to})
	}
	return out
}
