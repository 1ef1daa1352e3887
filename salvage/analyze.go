package salvage

import (
	"path/filepath"

	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/spill"
)

// Analysis is the per-key view of a healthy etcd db against a set of lost
// revision ranges: which keys may be stale and the Kubernetes ledger.
type Analysis struct {
	PossiblyStale      []StaleKey       `json:"possibly_stale"`
	PossiblyStaleCount int              `json:"possibly_stale_count"`
	Ledger             []ResourceLedger `json:"kubernetes"`
	FirstRevision      int64            `json:"first_revision"`
	LastRevision       int64            `json:"last_revision"`
	Records            int              `json:"records"`
	// Etcd is the scan's summary of the db (versions, alarms, ...), so a
	// caller needs no second scan.
	Etcd *pagewalk.EtcdSummary `json:"-"`
}

// Analyze reads the key bucket of a healthy db (one boltfix wrote) and
// judges every key against lost. maxListed caps the stale list (0: 10000).
func Analyze(dbPath string, lost [][2]int64, maxListed int) (*Analysis, error) {
	if maxListed == 0 {
		maxListed = 10000
	}
	f, err := pagewalk.Open(dbPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Its tables spill next to the db (a temp dir of boltfix's own).
	sp := spill.For(filepath.Dir(dbPath), f.Size())
	defer sp.Close()
	res, err := f.Scan(pagewalk.Options{Spill: sp})
	if err != nil {
		return nil, err
	}
	var compact int64
	if c := res.Report.Etcd.FinishedCompact; c != nil {
		compact = *c
	}
	ks := &keySpace{keys: newKeyTable(res.Spill()), compact: compact, prevMain: max(compact, 1)}
	a := &Analysis{Etcd: res.Report.Etcd}
	if kb := res.Bucket("key"); kb != nil {
		err = res.ForEach(kb, func(k, v []byte) error {
			rev, ok := pagewalk.ParseRevision(k)
			if !ok {
				return nil
			}
			a.Records++
			if kv, err := decodeRecord(rev, v); err == nil {
				ks.observe(kv.Key, rev, false)
			}
			ks.dense(rev.Main)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	rep := &Report{LostRevisions: lost, PossiblyStale: []StaleKey{}, Ledger: []ResourceLedger{}}
	judgeKeys(ks, rep, Options{MaxListed: maxListed})
	a.PossiblyStale, a.PossiblyStaleCount, a.Ledger = rep.PossiblyStale, rep.PossiblyStaleCount, rep.Ledger
	a.FirstRevision, a.LastRevision = ks.first, ks.last
	return a, nil
}
