package salvage

import (
	"bytes"
	"fmt"

	"github.com/boltfix/boltfix/kube"
	"github.com/boltfix/boltfix/pagewalk"
	"github.com/cespare/xxhash/v2"
)

// Values carry no checksum: a flipped bit inside a value, or garbage written
// over a page that still parses, changes a record without any sign. What
// can vouch for a value is a second witness: an identical copy of the same
// revision on another page (copy-on-write leaves older copies of a leaf in
// free pages), or, in repair, the WAL entry that wrote it. When the scan
// shows damage that can reach value bytes unseen, every record without a
// second witness is reported unverified; where copies differ, the one more
// witnesses agree on is kept (docs/recovery.md §3, "Damage that hides in
// values").

// copyRef is one carved copy of a revision record: the hash of its value
// and the page it lies on (to read the value again if it is chosen).
type copyRef struct {
	hash uint64
	page uint64
}

// valueHash is xxhash64 (FNV, one byte at a time, cost a tenth of a
// salvage's CPU on a healthy db): equal hashes only nominate copies as
// equal, and every decision that writes a value compares its bytes.
func valueHash(v []byte) uint64 {
	return xxhash.Sum64(v)
}

// maxUnverifiedListed bounds the unverified list; the count stays exact.
const maxUnverifiedListed = 10000

// UnverifiedRecord is a written record whose value nothing else vouches for
// while the file shows damage that can change values unseen.
type UnverifiedRecord struct {
	Key      string            `json:"key"`
	Revision pagewalk.Revision `json:"revision"`
}

// valueDamagePossible says whether the scan found damage of a kind that can
// also have changed value bytes without a trace: anything but a torn page's
// zeroed elements, a truncated file, meta damage or a file that changed
// while read. Garbage pages and flipped bits elsewhere mean other pages may
// carry flips the structure does not show.
func valueDamagePossible(r *pagewalk.Report, rejected int) (bool, string) {
	if rejected > 0 {
		return true, fmt.Sprintf("%d reached records did not decode or disagreed with their revision", rejected)
	}
	torn, cut := map[uint64]bool{}, false
	for _, f := range r.Findings {
		switch {
		case f.Kind == pagewalk.KindChildIsMeta && f.Page != nil:
			torn[*f.Page] = true
		case f.Kind == pagewalk.KindTruncated:
			cut = true
		}
	}
	for _, f := range r.Findings {
		switch f.Kind {
		case pagewalk.KindChildIsMeta, pagewalk.KindTruncated, pagewalk.KindMetaInvalid, pagewalk.KindMetaUnusable,
			pagewalk.KindNoUsableMeta, pagewalk.KindFileChanged:
			continue
		case pagewalk.KindChildPastEOF, pagewalk.KindOverflowPastEOF:
			if cut {
				continue // the file was cut short: pointers past its end are expected
			}
		case pagewalk.KindKeyOrder:
			if underTorn(f, torn) {
				continue // separators wiped with the zeroed elements of a torn page
			}
		case pagewalk.KindZeroedBlock:
			if isKeyBucketPath(f.Bucket) {
				continue // the records it names are unverified one by one (zeroedSuspects)
			}
		case pagewalk.KindZeroedKey:
			if isKeyBucketPath(f.Bucket) {
				continue // a lost record: its range is reported lost
			}
		}
		return true, fmt.Sprintf("the scan found %s damage (page %s): damage of that kind can change values without a trace", f.Kind, pageOf(f))
	}
	return false, ""
}

// underTorn reports whether f lies on or under a torn page: a page with
// zeroed elements, whose other separator keys the zeroing wiped too.
func underTorn(f pagewalk.Finding, torn map[uint64]bool) bool {
	if f.Page != nil && torn[*f.Page] {
		return true
	}
	for _, p := range f.Chain {
		if torn[p] {
			return true
		}
	}
	return false
}

func pageOf(f pagewalk.Finding) string {
	if f.Page == nil {
		return "-"
	}
	return fmt.Sprint(*f.Page)
}

// chooseCopy settles a revision whose copies differ: the reached value (if
// any) against the carved copies. The value more copies agree on wins;
// between equals, one that decodes consistently, then the reached one. It
// returns the value to write, where it came from, and why.
func chooseCopy(res *pagewalk.Result, revKey []byte, rev pagewalk.Revision, reached []byte, copies []copyEntry) ([]byte, string, uint64, string) {
	type group struct {
		hash  uint64
		n     int
		page  uint64
		value []byte
	}
	var groups []*group
	find := func(h uint64) *group {
		for _, g := range groups {
			if g.hash == h {
				return g
			}
		}
		g := &group{hash: h}
		groups = append(groups, g)
		return g
	}
	if reached != nil {
		g := find(valueHash(reached))
		g.n++
		g.value = reached
	}
	for _, c := range copies {
		g := find(c.hash)
		g.n++
		if g.page == 0 {
			g.page = c.page
		}
	}
	valid := func(g *group) bool {
		if g.value == nil {
			g.value = readCopy(res, g.page, revKey)
		}
		if g.value == nil {
			return false
		}
		_, err := decodeRecord(rev, g.value)
		return err == nil
	}
	best := groups[0]
	for _, g := range groups[1:] {
		switch {
		case g.n > best.n && valid(g):
			best = g
		case g.n == best.n && !valid(best) && valid(g):
			best = g
		}
	}
	if best.value == nil {
		best.value = readCopy(res, best.page, revKey)
	}
	if best.value == nil {
		return reached, "reached", 0, "the carved copies could not be read again: kept the reached one"
	}
	from, page := "carved", best.page
	if reached != nil && bytes.Equal(best.value, reached) {
		from, page = "reached", 0
	}
	why := fmt.Sprintf("%d copies: %d agree on the kept value", len(copies)+btoi(reached != nil), best.n)
	if best.n == 1 {
		why = fmt.Sprintf("%d copies, all different: kept the %s one (it decodes consistently, or it is the reached one)", len(copies)+btoi(reached != nil), from)
	}
	return best.value, from, page, why
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// readCopy reads the value of revKey from the leaf at pgid again, or nil.
func readCopy(res *pagewalk.Result, pgid uint64, revKey []byte) []byte {
	n, _, err := res.File.ReadNodeInto(pgid, nil, maxCarvedNode)
	if err != nil {
		return nil
	}
	for i := 0; i < n.Elements(); i++ {
		if e, fe := n.Leaf(i); fe == nil && !e.IsBucket() && bytes.Equal(e.Key, revKey) {
			return bytes.Clone(e.Value)
		}
	}
	return nil
}

// countHash counts the copies whose value hashes to h.
func countHash(cs []copyEntry, h uint64) int {
	n := 0
	for _, c := range cs {
		if c.hash == h {
			n++
		}
	}
	return n
}

// noWitness notes a written record that no second copy vouches for; it
// counts only if the damage can reach values (settleUnverified).
func noWitness(rep *Report, etcdKey []byte, rev pagewalk.Revision, unframed bool) {
	rep.UnverifiedCount++
	if len(rep.Unverified) < maxUnverifiedListed {
		rep.Unverified = append(rep.Unverified, UnverifiedRecord{Key: string(etcdKey), Revision: rev})
	}
	switch {
	case rep.zeroed[rev]:
		rep.zeroedCount++
		if len(rep.zeroedUnverified) < maxUnverifiedListed {
			rep.zeroedUnverified = append(rep.zeroedUnverified, UnverifiedRecord{Key: string(etcdKey), Revision: rev})
		}
	case unframed:
		rep.unframedCount++
		if len(rep.unframedUnverified) < maxUnverifiedListed {
			rep.unframedUnverified = append(rep.unframedUnverified, UnverifiedRecord{Key: string(etcdKey), Revision: rev})
		}
	}
}

// witnessCarved judges the value v of a carved record about to be
// written, as the copy judges a reached one: its Kubernetes frame, and
// noWitness unless a second identical copy vouches for it.
func witnessCarved(rep *Report, cr *carveResult, c *carved, etcdKey, revKey, v []byte) {
	unframed := false
	if kv, err := pagewalk.ParseKeyValue(v); err == nil && !c.rev.Tombstone {
		unframed = unframedValue(rep, etcdKey, kv.Value)
	}
	if countHash(cr.copies.of(revKey), c.hash) < 2 {
		noWitness(rep, etcdKey, c.rev, unframed)
	}
}

// framesTrusted: the Kubernetes frames are the apiserver's (kube.FrameIntact)
// for most values judged, so a broken one shows damage. When most are
// broken, the values were framed by another writer, and none is taken as
// damage (noteFrames says so).
func framesTrusted(rep *Report) bool { return 2*rep.framesBroken <= rep.framesChecked }

// noteFrames tells, once the copy is done, when the frame check was not
// used.
func noteFrames(rep *Report) {
	if !framesTrusted(rep) {
		rep.Notes = appendCapped(rep.Notes, fmt.Sprintf("%d of %d Kubernetes values are not framed as kube-apiserver writes them: taken as another writer's framing, not as damage (values changed on disk are then not caught by their frame)", rep.framesBroken, rep.framesChecked))
	}
}

// suspectReason says what shows that the suspects' values were changed.
func suspectReason(rep *Report) string {
	const zeroed = "a whole 4 KiB block of their values reads as zeros (zeroed-block: a hole or a lost write)"
	const unframed = "their Kubernetes values are not framed as kube-apiserver writes them (bytes changed on disk: most likely random bytes over a page that continues their node, which leaves every page well-formed)"
	switch {
	case rep.unframedCount == 0 || !framesTrusted(rep):
		return "of these records, " + zeroed
	case rep.zeroedCount == 0:
		return "of these records, " + unframed
	default:
		return fmt.Sprintf("of %d of these records, %s; of the other %d, %s", rep.zeroedCount, zeroed, rep.unframedCount, unframed)
	}
}

// unframedValue reports whether v, the value of a put of etcdKey, is a
// Kubernetes object whose frame shows it was changed on disk, counting
// the values it judges.
func unframedValue(rep *Report, etcdKey, v []byte) bool {
	if !bytes.HasPrefix(etcdKey, []byte("/registry/")) {
		return false
	}
	rep.framesChecked++
	if kube.FrameIntact(v) {
		return false
	}
	rep.framesBroken++
	return true
}

func isKeyBucketPath(p []string) bool { return len(p) == 1 && p[0] == "key" }

// zeroedSuspects are the revisions of the key-bucket records that
// zeroed-block findings name: a whole 4 KiB block of their bytes reads as
// zeros. Their pages are read once more (such findings are few, and each
// names its page and element).
func zeroedSuspects(res *pagewalk.Result) map[pagewalk.Revision]bool {
	out := map[pagewalk.Revision]bool{}
	for _, f := range res.Report.Findings {
		if f.Kind != pagewalk.KindZeroedBlock || f.Page == nil || f.Element == nil || !isKeyBucketPath(f.Bucket) {
			continue
		}
		n, err := res.File.ReadNode(*f.Page)
		if err != nil {
			continue
		}
		last := *f.Element
		if f.Elements != nil {
			last = f.Elements[1]
		}
		for i := *f.Element; i <= last; i++ {
			if e, fe := n.Leaf(i); fe == nil {
				if rev, ok := pagewalk.ParseRevision(e.Key); ok {
					out[rev] = true
				}
			}
		}
	}
	return out
}

// settleUnverified keeps the unverified records only when the scan shows
// damage that can change values unseen, and says why.
func settleUnverified(res *pagewalk.Result, rep *Report) {
	possible, why := valueDamagePossible(res.Report, rep.Records.Rejected+rep.Records.Inconsistent)
	switch {
	case possible:
	case len(rep.Conflicts) > 0:
		possible, why = true, fmt.Sprintf("%d revisions have copies that differ: values were changed somewhere", len(rep.Conflicts))
	case len(rep.LostRevisions) > 0 && rep.ScanClean:
		possible, why = true, "revisions are missing from a tree that walks clean: bytes were changed somewhere"
	}
	if !possible && (rep.zeroedCount > 0 || rep.unframedCount > 0 && framesTrusted(rep)) {
		suspects, n := rep.zeroedUnverified, rep.zeroedCount
		if framesTrusted(rep) {
			suspects = append(suspects, rep.unframedUnverified...)
			n += rep.unframedCount
		}
		rep.Unverified, rep.UnverifiedCount = suspects[:min(len(suspects), maxUnverifiedListed)], n
		rep.UnverifiedReason = suspectReason(rep) + "; they have no second witness (an identical copy elsewhere in the file)"
		return
	}
	if !possible {
		rep.Unverified, rep.UnverifiedCount = []UnverifiedRecord{}, 0
		return
	}
	rep.UnverifiedReason = why + "; these records have no second witness (an identical copy elsewhere in the file)"
}
