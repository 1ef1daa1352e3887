package repair

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/boltfix/boltfix/fixtures"
	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/wal"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// olderWorkload is w with a db snapshot taken at the given fraction of the
// writes (Truth.OlderDB).
func olderWorkload(w fixtures.Workload, at float64) fixtures.Workload {
	w.SnapshotAt = at
	return w
}

// metaEdit rewrites fields of the meta bucket of the healthy db at path
// with bbolt: what a restored old copy with a rewritten meta, or a lost
// write of the newest pages, leaves.
type metaEdit struct {
	index, term                *uint64
	finishedCompact, scheduled *int64
}

func (m metaEdit) String() string {
	s := ""
	if m.index != nil {
		s += fmt.Sprintf(" consistent_index=%d", *m.index)
	}
	if m.term != nil {
		s += fmt.Sprintf(" term=%d", *m.term)
	}
	if m.finishedCompact != nil {
		s += fmt.Sprintf(" finishedCompactRev=%d", *m.finishedCompact)
	}
	if m.scheduled != nil {
		s += fmt.Sprintf(" scheduledCompactRev=%d", *m.scheduled)
	}
	return s
}

func u8(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func editMeta(t *testing.T, path string, m metaEdit) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("meta"))
		put := func(k string, v []byte) {
			if err == nil {
				err = b.Put([]byte(k), v)
			}
		}
		if m.index != nil {
			put("consistent_index", u8(*m.index))
		}
		if m.term != nil {
			put("term", u8(*m.term))
		}
		if m.finishedCompact != nil {
			put("finishedCompactRev", pagewalk.RevisionKey(pagewalk.Revision{Main: *m.finishedCompact}))
		}
		if m.scheduled != nil {
			put("scheduledCompactRev", pagewalk.RevisionKey(pagewalk.Revision{Main: *m.scheduled}))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// readMeta returns the db's consistent_index, term and newest revision.
func readMeta(t *testing.T, path string) (index, term uint64, top int64) {
	t.Helper()
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("meta"))
		index = binary.BigEndian.Uint64(b.Get([]byte("consistent_index")))
		term = binary.BigEndian.Uint64(b.Get([]byte("term")))
		k, _ := tx.Bucket([]byte("key")).Cursor().Last()
		r, _ := pagewalk.ParseRevision(k)
		top = r.Main
		return nil
	})
	return index, term, top
}

// honest judges the keys etcd serves on the repair's output (complete
// must imply every key exact) and returns the comparison.
func honest(t *testing.T, truth *fixtures.Truth, rep *Report, wantExact bool) fixtures.Diff {
	t.Helper()
	return fixtures.Compare(truth, judgeKeys(t, truth, rep, wantExact))
}

// run repairs dir without repair's own start check: honest starts etcd on
// the result anyway.
func run(t *testing.T, dir string) *Report {
	t.Helper()
	rep, err := Run(dir, Options{Out: filepath.Join(t.TempDir(), "out"), SkipStartCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// An older, healthy db whose meta bucket claims the newest
// consistent_index and term, with a purged WAL: the claim is a lie the WAL
// exposes. Repair must say so (exit 1, every wrong key inside a lost
// range), exactly as for the same db with its honest index.
func TestRepairOlderDBClaimingNewestIndex(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    fixtures.Workload
		// inReach: the WAL reaches back to the older db's state, so an
		// anchor finds its true index and the repair is exact.
		inReach bool
	}{
		// Kubernetes-shaped (txns, compaction every 300 revisions): the
		// snapshot at 90% of the writes is older than the purged WAL.
		{"kube-beyond-wal-reach", olderWorkload(fixtures.KubeWorkload(), 0.9), false},
		// Plain puts and txns: the snapshot at 97% is inside the WAL.
		{"within-wal-reach", olderWorkload(fixtures.PurgedWALWorkload(), 0.97), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, truth := fixtures.Cached(t, tc.name, tc.w)
			db := fixtures.DBPath(dir)
			newIdx, newTerm, _ := readMeta(t, db)
			oldIdx, _, oldTop := readMeta(t, truth.OlderDB)
			if oldIdx >= newIdx {
				t.Fatalf("older db index %d not below %d", oldIdx, newIdx)
			}

			// The honest older db first: the reference outcome.
			if _, err := fixtures.OlderDB(dir, truth.OlderDB); err != nil {
				t.Fatal(err)
			}
			honestRep := run(t, dir)
			dh := honest(t, truth, honestRep, tc.inReach)

			// The same db claiming the newest index and term.
			editMeta(t, db, metaEdit{index: &newIdx, term: &newTerm})
			rep := run(t, dir)
			dl := honest(t, truth, rep, tc.inReach)
			if rep.Audit == nil || rep.Audit.Holds {
				t.Fatalf("the audit did not expose the claim: %+v", rep.Audit)
			}
			if rep.Complete != honestRep.Complete || !tc.inReach && rep.Complete {
				t.Errorf("complete %v, with the honest index %v", rep.Complete, honestRep.Complete)
			}
			if tc.inReach {
				if rep.Audit.TrueIndex == 0 || rep.Audit.TrueIndex > oldIdx {
					t.Errorf("true index %d, the db's real index is %d", rep.Audit.TrueIndex, oldIdx)
				}
			} else if !inLost(rep, oldTop+1) {
				t.Errorf("revision %d after the older db's top not reported lost: %v", oldTop+1, rep.LostRevisions)
			}
			if len(dl.Stale) != len(dh.Stale) || len(dl.Missing) != len(dh.Missing) || len(dl.Resurrected) != len(dh.Resurrected) {
				t.Errorf("lying index: %s; honest index: %s", dl, dh)
			}
			t.Logf("audit: %s; lost %v %v", rep.Audit.Verdict, rep.LostRevisions, rep.LostReasons)
		})
	}
}

// Perturbed meta fields on a healthy db with a purged WAL: whatever the
// db says of itself, repair never claims complete on a wrong result.
func TestRepairNeverCompleteOnMetaLie(t *testing.T) {
	dir0, truth := fixtures.Cached(t, "purged", fixtures.PurgedWALWorkload())
	idx, term, top := readMeta(t, fixtures.DBPath(dir0))
	rng := rand.New(rand.NewPCG(8, 8))
	p := func(v uint64) *uint64 { return &v }
	r := func(v int64) *int64 { return &v }
	cases := []metaEdit{
		{index: p(idx - 40)}, // newer than it claims
		{index: p(idx + 50)}, // claims entries never committed
		{term: p(term + 1)},  // a term the WAL never had
		// Random lies, a new pair per seed change.
		{finishedCompact: r(top - int64(rng.IntN(100))), scheduled: r(top - int64(rng.IntN(100)))},
		{index: p(idx - 1 - uint64(rng.IntN(150))), term: p(term + uint64(rng.IntN(2)))},
	}
	for i, m := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			dir, _ := fixtures.Cached(t, "purged", fixtures.PurgedWALWorkload())
			editMeta(t, fixtures.DBPath(dir), m)
			rep := run(t, dir)
			d := honest(t, truth, rep, false)
			t.Logf("%s: complete %v; %s; audit: %s; lost %v", m, rep.Complete, d, rep.Audit.Verdict, rep.LostRevisions)
		})
	}
}

// The audit alone, on an older db inside the WAL's reach, against claims
// moved around its true index: the true claim holds and is vouched for; a
// claim above it with an entry between whose put the final store holds
// (so the older db lacks it) never holds; a claim below it with a put
// between that the older db holds never holds either. No etcd: fast, so
// many claims.
func TestAuditClaimsProperty(t *testing.T) {
	dir, truth := fixtures.Cached(t, "within-wal-reach", olderWorkload(fixtures.PurgedWALWorkload(), 0.97))
	final := fixtures.DBPath(dir)
	older := truth.OlderDB
	oldIdx, oldTerm, _ := readMeta(t, older)
	log, err := wal.Read(filepath.Join(dir, "member", "wal"))
	if err != nil {
		t.Fatal(err)
	}
	// putHeld[i]: entry i is a put (plain or in a txn) whose record the
	// given store holds.
	held := func(db string) map[uint64]bool {
		out := map[uint64]bool{}
		recs := map[tripleID]bool{}
		b, err := bolt.Open(db, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		_ = b.View(func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("key")).ForEach(func(k, v []byte) error {
				var kv mvccpb.KeyValue
				if r, ok := pagewalk.ParseRevision(k); ok && !r.Tombstone && proto.Unmarshal(v, &kv) == nil {
					recs[triple(kv.Key, kv.Value, kv.Lease)] = true
				}
				return nil
			})
		})
		for _, e := range log.Entries {
			if p := anchorPut(wal.DecodeEntry(e)); p != nil && recs[triple(p.Key, p.Value, p.Lease)] {
				out[e.GetIndex()] = true
			}
		}
		return out
	}
	inFinal, inOlder := held(final), held(older)
	rng := rand.New(rand.NewPCG(8, 9))
	deltas := []int64{0, 1, -1}
	for i := 0; i < 17; i++ {
		deltas = append(deltas, int64(rng.IntN(241))-120)
	}
	lies := map[bool]int{} // by side: claims above / below the truth
	for _, d := range deltas {
		claim := uint64(int64(oldIdx) + d)
		a, err := auditClaims(older, log, claim, 0)
		if err != nil {
			t.Fatal(err)
		}
		between := false
		for i := min(claim, oldIdx) + 1; i <= max(claim, oldIdx); i++ {
			between = between || d > 0 && inFinal[i] && !inOlder[i] || d < 0 && inOlder[i]
		}
		if between {
			lies[d > 0]++
		}
		switch {
		case d == 0 && !(a.Holds && a.Vouched):
			t.Errorf("true claim %d: %s %v", claim, a.Verdict, a.Failures)
		case between && a.Holds:
			t.Errorf("claim %d (true %d) holds: %s", claim, oldIdx, a.Verdict)
		}
	}
	if lies[true] == 0 || lies[false] == 0 {
		t.Errorf("the claims tested no lie on one side: %v", lies)
	}
	// The term: the true index with the wrong term never holds.
	if a, _ := auditClaims(older, log, oldIdx, oldTerm+1); a.Holds {
		t.Errorf("wrong term holds: %s", a.Verdict)
	}
}
