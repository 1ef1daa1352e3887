package salvage

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/boltfix/boltfix/pagewalk"
)

// The generic path: a bbolt file that is not etcd's (containerd's meta.db,
// raft-boltdb, Vault, ...) is salvaged on bbolt's terms. Its buckets are
// mutable, with no revision order: a record found outside the walked tree
// goes back in place only when the file proves it current (a synced
// freelist that does not list its page, docs/recovery.md §11); everything else found
// under damage goes to lost+found, never into the live buckets.

// isGeneric decides whether a scanned file takes the generic path: the
// scan names it a bbolt file that is not etcd's, and no etcd key-bucket
// record was carved from it (a file whose root is gone shows no buckets).
func isGeneric(res *pagewalk.Result, carvedEtcd bool) bool {
	l := res.Report.Layout
	if l == nil || l.IsEtcd() {
		return false
	}
	return len(l.TopLevel) > 0 || !carvedEtcd
}

// lossRange is a finding's lost key range, resolved to its bucket.
type lossRange struct {
	idx      int // index in res.Report.Findings
	bucket   *pagewalk.Bucket
	after    []byte // nil: open
	before   []byte
	exact    bool // the bounds are whole keys (not truncated renderings)
	restored int
}

func (l *lossRange) holds(first, last []byte) bool {
	return l.exact && (l.after == nil || bytes.Compare(l.after, first) < 0) && (l.before == nil || bytes.Compare(last, l.before) < 0)
}

// genericState carries one generic salvage.
type genericState struct {
	res    *pagewalk.Result
	w      *dbWriter
	rep    *Report
	g      *GenericReport
	byPath map[string]*GenericBucket
	losses []*lossRange
	lf     *lostFound
	// recovered marks the findings (by index) whose lost range the file
	// proves recovered.
	recovered map[int]bool
}

func pathKey(p [][]byte) string {
	var b strings.Builder
	for _, s := range p {
		b.WriteString(hex.EncodeToString(s))
		b.WriteByte('/')
	}
	return b.String()
}

// bucketCount returns the counts of the bucket at path, creating them.
func (s *genericState) bucketCount(path [][]byte) *GenericBucket {
	k := pathKey(path)
	if b := s.byPath[k]; b != nil {
		return b
	}
	b := &GenericBucket{Path: []string{}, PathHex: []string{}}
	for _, p := range path {
		b.Path = append(b.Path, printableKey(p))
		b.PathHex = append(b.PathHex, hex.EncodeToString(p))
	}
	s.byPath[k] = b
	return b
}

// fromScanGeneric salvages a bbolt file that is not etcd's.
func fromScanGeneric(res *pagewalk.Result, in, out string, opts Options) (*Report, error) {
	rep := &Report{
		Schema: ReportSchema, Input: in, Output: out, Aggressive: opts.Aggressive, Layout: res.Report.Layout,
		Source: res.Report.ChosenReason, Findings: len(res.Report.Findings), ScanClean: res.Report.Clean,
		LostRevisions: [][2]int64{}, LostReasons: []string{}, PossiblyStale: []StaleKey{},
		Uncertain: []UncertainRecord{}, LeftOut: []LeftOutKey{}, Unverified: []UnverifiedRecord{}, Conflicts: []Conflict{},
		Ledger: []ResourceLedger{}, Buckets: []BucketCount{}, Notes: []string{}, Next: []string{},
	}
	g := &GenericReport{Buckets: []GenericBucket{}, Lost: []GenericLoss{}, LostFound: LostFoundSummary{Status: map[string]int{}}}
	rep.Generic = g
	free, why := res.FreelistProof()
	if free != nil {
		g.Proof = "synced-freelist"
	} else {
		g.Proof, g.ProofMissing = "none", why
	}
	StartPhase(opts.Progress, "gathering unreached pages", -1)
	fo := newForest(res, free)
	for p := range tiedRoots(res) {
		fo.roots[p] = true
	}
	fo.build()
	if err := Interrupted(opts.Context, "gathering unreached pages"); err != nil {
		return nil, err
	}

	tmp, w, err := openOutput(out, res, opts)
	if err != nil {
		return nil, err
	}
	rep.PageSize = w.db.Info().PageSize
	published := false
	defer func() {
		if !published {
			w.abort()
			os.Remove(tmp)
		}
	}()
	s := &genericState{res: res, w: w, rep: rep, g: g, byPath: map[string]*GenericBucket{}, recovered: map[int]bool{}}
	s.lf = &lostFound{w: w, name: []byte(lostFoundName(res.Report.Layout)), pages: map[uint64]bool{}, sum: &g.LostFound}
	StartPhase(opts.Progress, "writing the new db", -1)
	if err := s.copyReached(); err != nil {
		return nil, err
	}
	s.resolveLosses()
	covered, rest, err := s.placeSubtrees(fo)
	if err != nil {
		return nil, err
	}
	s.lossReport(free, covered)
	if err := s.keepApart(fo, rest); err != nil {
		return nil, err
	}
	if err := w.close(); err != nil {
		return nil, err
	}
	StartPhase(opts.Progress, "checking the new db", -1)
	if err := verify(tmp); err != nil {
		return nil, fmt.Errorf("the written db failed bbolt's check (a bug in boltfix): %w", err)
	}
	rep.Verified = true
	if err := Interrupted(opts.Context, "checking the new db"); err != nil {
		return nil, err
	}
	if err := publish(tmp, out); err != nil {
		return nil, err
	}
	published = true
	s.finish()
	return rep, nil
}

// lostFoundName is LostFoundBucket, or the first LostFoundBucket.N that is
// not already a top-level bucket of the input.
func lostFoundName(l *pagewalk.Layout) string {
	name := LostFoundBucket
	for i := 1; l != nil && slices.Contains(l.TopLevel, name); i++ {
		name = fmt.Sprintf("%s.%d", LostFoundBucket, i)
	}
	return name
}

// copyReached writes every reached bucket (nested and inline, with its
// sequence) and its records, from the one tree the scan walked.
func (s *genericState) copyReached() error {
	for _, b := range s.res.Buckets {
		if len(b.Path) == 0 {
			continue // the root tree holds only buckets
		}
		bc := s.bucketCount(b.Path)
		bc.Damaged = b.Damaged
		bkt, err := s.w.bucket(b.Path)
		if isRefused(err) {
			bc.LeftOut += b.Records
			s.rep.Notes = appendCapped(s.rep.Notes, fmt.Sprintf("bucket %q left out: %v", bc.Path, err))
			continue
		} else if err != nil {
			return err
		}
		if err := bkt.SetSequence(b.Sequence); err != nil {
			return err
		}
		err = s.res.ForEach(b, func(k, v []byte) error {
			err := s.w.put(b.Path, bytes.Clone(k), bytes.Clone(v), 0.5)
			if isRefused(err) {
				bc.LeftOut++
				s.rep.Notes = appendCapped(s.rep.Notes, fmt.Sprintf("record %q in bucket %q left out: %v", printableKey(k), bc.Path, err))
				return nil
			}
			if err == nil {
				bc.Reached++
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return s.w.commit()
}

// resolveLosses maps every finding's lost key range to its reached bucket.
func (s *genericState) resolveLosses() {
	byName := map[string]*pagewalk.Bucket{}
	for _, b := range s.res.Buckets {
		byName[b.Name()] = b
	}
	for i, f := range s.res.Report.Findings {
		if f.Lost == nil {
			continue
		}
		l := &lossRange{idx: i, bucket: byName[strings.Join(f.Bucket, "/")], exact: true}
		for _, k := range []struct {
			key *pagewalk.Key
			dst *[]byte
		}{{f.Lost.After, &l.after}, {f.Lost.Before, &l.before}} {
			if k.key == nil {
				continue
			}
			b, err := hex.DecodeString(k.key.Hex)
			if err != nil || k.key.Truncated {
				l.exact = false
				continue
			}
			*k.dst = b
		}
		s.losses = append(s.losses, l)
	}
}

// placeSubtrees puts each orphaned subtree back under the one damaged
// bucket range its keys fit in. It returns the pages of the subtrees put
// back whole, and the subtrees left for lost+found.
func (s *genericState) placeSubtrees(fo *forest) (map[uint64]bool, []*subtree, error) {
	covered := map[uint64]bool{}
	u := &s.g.Unreached
	var rest []*subtree
	for _, st := range fo.trees {
		if st.status != statusOrphan {
			rest = append(rest, st)
			continue
		}
		u.Orphaned++
		if st.first == nil {
			// An empty orphaned node holds nothing to put back.
			u.Placed++
			markCovered(covered, st, st.broken == 0)
			continue
		}
		fits := s.fitting(st)
		target := oneBucket(fits)
		if target == nil {
			rest = append(rest, st)
			continue
		}
		n, err := s.place(st, target)
		if err != nil {
			return nil, nil, err
		}
		fits[0].restored += n // every fitting range is in the one bucket
		u.Placed++
		markCovered(covered, st, st.broken == 0)
	}
	return covered, rest, s.w.commit()
}

// fitting lists the lost ranges whose bounds hold a subtree's own keys.
func (s *genericState) fitting(st *subtree) []*lossRange {
	var fits []*lossRange
	if st.first == nil {
		return nil
	}
	for _, l := range s.losses {
		if l.bucket != nil && l.holds(st.first, st.last) {
			fits = append(fits, l)
		}
	}
	return fits
}

// keepApart writes to lost+found what cannot be put back: orphaned
// subtrees with no single place (current, but where is not proven); the
// subtree of a root candidate that may be a newer commit than the tree
// walked (no meta to tell); and records on free or unproven pages inside a
// lost range that is not proven recovered. Free or unproven records
// elsewhere are older copies of key ranges the output holds whole: they are
// counted, not kept.
func (s *genericState) keepApart(fo *forest, rest []*subtree) error {
	u := &s.g.Unreached
	open := func(l *lossRange) bool { return !s.recovered[l.idx] }
	tied := tiedRoots(s.res)
	for _, st := range rest {
		fits := s.fitting(st)
		var guess [][]byte
		for _, l := range fits {
			if open(l) || st.status == statusOrphan {
				guess = l.bucket.Path
				break
			}
		}
		root := tied[st.root]
		if st.status != statusOrphan && guess == nil && !root {
			u.Stale++
			u.StaleRecords += len(st.recs)
			continue
		}
		var hint []byte
		if guess == nil && !root {
			hint = fo.staleNames[st.root]
		}
		u.ToLostFound++
		for _, r := range st.recs {
			var path [][]byte
			switch {
			case root:
				path = r.rel // the subtree is a whole file tree
			case guess != nil:
				path = append(append([][]byte{}, guess...), r.rel...)
			}
			if err := s.lf.add(path, hint, r, st.status); err != nil {
				return err
			}
			if path != nil {
				s.bucketCount(path).LostFound++
			}
		}
	}
	return s.w.commit()
}

// oneBucket returns the bucket every fitting range lies in, or nil when
// none fits or they name different buckets (ambiguous: not placed).
func oneBucket(fits []*lossRange) *pagewalk.Bucket {
	if len(fits) == 0 {
		return nil
	}
	for _, l := range fits[1:] {
		if l.bucket != fits[0].bucket {
			return nil
		}
	}
	return fits[0].bucket
}

func markCovered(covered map[uint64]bool, st *subtree, whole bool) {
	if !whole {
		return
	}
	for _, p := range st.pages {
		covered[p] = true
	}
}

// place writes an orphaned subtree's buckets and records under bucket b.
// A record that meets another at its key (or a record where the root tree
// allows only buckets) goes to lost+found: two current values for one key
// cannot both be right.
func (s *genericState) place(st *subtree, b *pagewalk.Bucket) (int, error) {
	for _, ob := range st.buckets {
		path := append(append([][]byte{}, b.Path...), ob.rel...)
		bkt, err := s.w.bucket(path)
		if isRefused(err) {
			s.rep.Notes = appendCapped(s.rep.Notes, fmt.Sprintf("orphaned bucket %q left out: %v", printableKey(pathBytes(path)), err))
			continue
		} else if err != nil {
			return 0, err
		}
		if err := bkt.SetSequence(ob.seq); err != nil {
			return 0, err
		}
		s.bucketCount(path)
	}
	n := 0
	for _, r := range st.recs {
		path := append(append([][]byte{}, b.Path...), r.rel...)
		if len(path) == 0 || s.w.get(path, r.key) != nil {
			if err := s.lf.add(path, nil, r, st.status); err != nil {
				return n, err
			}
			continue
		}
		err := s.w.put(path, r.key, r.value, 0.5)
		if isRefused(err) {
			if err := s.lf.add(path, nil, r, st.status); err != nil {
				return n, err
			}
			continue
		} else if err != nil {
			return n, err
		}
		s.bucketCount(path).Restored++
		n++
	}
	return n, nil
}

func pathBytes(p [][]byte) []byte { return bytes.Join(p, []byte("/")) }

// lossReport says, per lost range, whether the file proves it recovered:
// with a synced freelist every page of the last tree is reached, free, or
// orphaned; when every orphaned page was put back whole and nothing else
// is unaccounted for, a range whose damage was in pointers (a branch page)
// lost nothing. Damage in a leaf loses that leaf's records.
func (s *genericState) lossReport(free map[uint64]bool, covered map[uint64]bool) {
	res, g := s.res, s.g
	whole := free != nil
	why := ""
	if free == nil {
		why = "no proof: " + g.ProofMissing
	} else {
		limit := res.HWM
		if pc := res.File.PageCount(); pc < limit {
			g.Unreached.UnaccountedPages += int(limit - pc)
			limit = pc
		}
		for p := uint64(2); p < limit; p++ {
			if _, reached := res.Reached(p); reached || free[p] || covered[p] {
				continue
			}
			g.Unreached.UnaccountedPages++
		}
		if g.Unreached.UnaccountedPages > 0 {
			whole = false
			why = fmt.Sprintf("%d pages of the last tree are unreadable or missing", g.Unreached.UnaccountedPages)
		}
	}
	for _, l := range s.losses {
		f := res.Report.Findings[l.idx]
		gl := GenericLoss{Bucket: f.Bucket, Kind: f.Kind, Page: f.Page, Element: f.Element, After: f.Lost.After, Before: f.Lost.Before, Restored: l.restored}
		if gl.Bucket == nil {
			gl.Bucket = []string{}
		}
		switch {
		case !whole:
			gl.Why = why
		case f.Page == nil || !s.isReachedBranch(*f.Page):
			gl.Why = "the damage is in a page that held records: they are gone"
		default:
			gl.Recovered = true
			s.recovered[l.idx] = true
			gl.Why = "every page of the last tree is accounted for: the subtrees cut off were put back"
		}
		if !gl.Recovered {
			g.OpenRanges++
			if l.bucket != nil {
				s.bucketCount(l.bucket.Path).OpenRanges++
			}
		}
		g.Lost = append(g.Lost, gl)
	}
}

func (s *genericState) isReachedBranch(p uint64) bool {
	if _, ok := s.res.Reached(p); !ok {
		return false
	}
	n, err := s.res.File.ReadNode(p)
	return err == nil && n.Flags == pagewalk.FlagBranch
}

// finish sorts the bucket counts, totals them, and says what is complete
// and what to do next.
func (s *genericState) finish() {
	g, rep := s.g, s.rep
	keys := make([]string, 0, len(s.byPath))
	for k := range s.byPath {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b := s.byPath[k]
		g.Buckets = append(g.Buckets, *b)
		g.Reached += b.Reached
		g.Restored += b.Restored
		g.LeftOut += b.LeftOut
		if len(b.Path) > 0 {
			rep.Buckets = append(rep.Buckets, BucketCount{Bucket: b.Path, Reached: b.Reached, Carved: b.Restored, LeftOut: b.LeftOut, Written: b.Reached + b.Restored, Damaged: b.Damaged})
		}
	}
	g.Written = g.Reached + g.Restored
	zeroed := 0
	for _, f := range s.res.Report.Findings {
		if f.Kind == pagewalk.KindZeroedBlock {
			zeroed++
		}
	}
	if zeroed > 0 {
		// Written as they are (the bytes may be the value's own), but
		// nothing proves them: values carry no checksum.
		rep.Notes = appendCapped(rep.Notes, fmt.Sprintf("%d records hold a whole 4 KiB block of zeros (scan finding zeroed-block: a hole or a lost write): written as found, not proven", zeroed))
	}
	rep.Complete = g.OpenRanges == 0 && g.LeftOut == 0 && g.LostFound.Records == 0 && g.Unreached.UnaccountedPages == 0 && zeroed == 0
	if g.Proof != "synced-freelist" && len(g.Lost) > 0 {
		rep.Notes = appendCapped(rep.Notes, "records found outside the walked tree were not put back: "+g.ProofMissing)
	}
	app := "the application"
	if rep.Layout != nil && programs[rep.Layout.Application] != "" {
		app = programs[rep.Layout.Application]
	}
	switch {
	case rep.Complete:
		rep.Next = append(rep.Next, fmt.Sprintf("every record was recovered: stop %s, keep the damaged file aside, and put %s in its place", app, rep.Output))
	default:
		rep.Next = append(rep.Next, fmt.Sprintf("the lost key ranges above are gone from the live buckets: recreate those objects through %s after putting %s in place", app, rep.Output))
		if g.LostFound.Records > 0 {
			rep.Next = append(rep.Next, fmt.Sprintf("%d records that could not be proven current are in the %q bucket (JSON per record: page, status, guessed bucket, key, value): bbolt get %s %q KEY", g.LostFound.Records, g.LostFound.Bucket, rep.Output, g.LostFound.Bucket))
		}
	}
}

// tiedRoots are the unreached root candidates that fit a freelist page as
// well as the walked root (no usable meta): any may be the last commit's.
func tiedRoots(res *pagewalk.Result) map[uint64]bool {
	tied := map[uint64]bool{}
	if res.Report.Chosen < 0 {
		for _, rc := range res.Report.RootCandidates {
			if _, reached := res.Reached(rc.Page); !reached && rc.Tied {
				tied[rc.Page] = true
			}
		}
	}
	return tied
}

// programs names the program that owns each known layout, for advice.
var programs = map[string]string{
	"containerd-metadata": "containerd",
	"raft-boltdb":         "the raft node (Consul, Nomad, Vault)",
	"vault-fsm":           "Vault",
	"portainer":           "Portainer",
	"influxdb2":           "influxd",
}
