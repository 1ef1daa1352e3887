package repair

import (
	"bytes"
	"fmt"
	"math"
	"time"

	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/salvage"
	bolt "go.etcd.io/bbolt"
)

// span is an inclusive range of main revisions; hi = math.MaxInt64 is an
// open end.
type span struct{ lo, hi int64 }

func toSpans(lost [][2]int64) []span {
	out := make([]span, 0, len(lost))
	for _, r := range lost {
		hi := r[1]
		if hi == 0 {
			hi = math.MaxInt64
		}
		out = append(out, span{r[0], hi})
	}
	return out
}

// minus returns a with every span of b taken out; both sorted, disjoint.
func minus(a, b []span) []span {
	var out []span
	for _, x := range a {
		cur := []span{x}
		for _, y := range b {
			var next []span
			for _, c := range cur {
				if y.hi < c.lo || y.lo > c.hi {
					next = append(next, c)
					continue
				}
				if y.lo > c.lo {
					next = append(next, span{c.lo, y.lo - 1})
				}
				if y.hi < c.hi {
					next = append(next, span{y.hi + 1, c.hi})
				}
			}
			cur = next
		}
		out = append(out, cur...)
	}
	return out
}

func intersect(a []span, lo, hi int64) []span {
	var out []span
	for _, x := range a {
		if x.hi < lo || x.lo > hi {
			continue
		}
		out = append(out, span{max(x.lo, lo), min(x.hi, hi)})
	}
	return out
}

// candidate is one member's repaired db, as the fill step sees it.
type candidate struct {
	name string
	db   string
	rep  *Report
}

// fill is what one member gave the chosen db: records copied, and
// revisions its repair holds whole that the chosen one had to call lost
// (the records may have been there already, unproven).
type fill struct {
	records   int
	revisions int64
}

func openTop(lost [][2]int64) bool {
	for _, r := range lost {
		if r[1] == 0 {
			return true
		}
	}
	return false
}

// lostWeight ranks lost ranges: revisions lost, an open range counting
// more than any closed one.
func lostWeight(lost [][2]int64) int64 {
	var n int64
	for _, r := range lost {
		if r[1] == 0 {
			n += 1 << 40
		} else {
			n += r[1] - r[0] + 1
		}
	}
	return n
}

func count(ss []span) int64 {
	var n int64
	for _, s := range ss {
		if s.hi == math.MaxInt64 {
			continue // an open end vouched for holds no revision to count
		}
		n += s.hi - s.lo + 1
	}
	return n
}

// fillFromOthers takes each revision from wherever it survives: for every
// revision the chosen repair lost, another member's repair that holds it
// (at or below its newest revision and outside its own lost ranges) gives
// its records, copied into the chosen db. It returns the revisions still
// lost with their reasons, and per other member how many records it gave.
func fillFromOthers(chosenDB string, chosen *Report, others []candidate) ([][2]int64, []string, map[string]fill, error) {
	gave := map[string]fill{}
	need := toSpans(chosen.LostRevisions)
	if len(need) == 0 {
		return chosen.LostRevisions, chosen.LostReasons, gave, nil
	}
	out, err := bolt.Open(chosenDB, 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true})
	if err != nil {
		return nil, nil, nil, err
	}
	defer out.Close()
	all := need
	for _, c := range others {
		top, err := newestRevision(c.db)
		if err != nil || top == 0 {
			continue
		}
		// Every record c holds in the lost ranges is real (revision
		// records are immutable) and is copied; the ranges count as
		// recovered only where c's own repair claims them whole.
		n, err := copyRevisions(out, c.db, intersect(all, 1, top))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("copy revisions from %s: %w", c.name, err)
		}
		// A repair with no open range at the top reached the union WAL's
		// commit: it vouches that nothing exists above its newest revision.
		reach := top
		if !openTop(c.rep.LostRevisions) {
			reach = math.MaxInt64
		}
		held := minus(intersect(need, 1, reach), toSpans(c.rep.LostRevisions))
		gave[c.name] = fill{records: n, revisions: count(held)}
		need = minus(need, held)
	}
	// The reasons of the chosen repair's ranges, for what is left of each.
	var left []salvage.LostRange
	orig := toSpans(chosen.LostRevisions)
	for i, o := range orig {
		for _, s := range intersect(need, o.lo, o.hi) {
			to := s.hi
			if to == math.MaxInt64 {
				to = 0
			}
			why := chosen.LostReasons[i]
			if len(others) > 0 {
				why += "; no other member holds it"
			}
			left = append(left, salvage.LostRange{From: s.lo, To: to, Why: why})
		}
	}
	lost, reasons := salvage.MergeLost(left)
	return lost, reasons, gave, nil
}

func newestRevision(path string) (int64, error) {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var top int64
	err = db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("key")); b != nil {
			if k, _ := b.Cursor().Last(); k != nil {
				if r, ok := pagewalk.ParseRevision(k); ok {
					top = r.Main
				}
			}
		}
		return nil
	})
	return top, err
}

// copyRevisions copies the key-bucket records of the spans from the db at
// src into out, where absent; it returns how many it copied.
func copyRevisions(out *bolt.DB, src string, spans []span) (int, error) {
	db, err := bolt.Open(src, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	n := 0
	err = db.View(func(stx *bolt.Tx) error {
		sb := stx.Bucket([]byte("key"))
		if sb == nil {
			return nil
		}
		return out.Update(func(tx *bolt.Tx) error {
			ob, err := tx.CreateBucketIfNotExists([]byte("key"))
			if err != nil {
				return err
			}
			c := sb.Cursor()
			for _, s := range spans {
				for k, v := c.Seek(pagewalk.RevisionKey(pagewalk.Revision{Main: s.lo})); k != nil; k, v = c.Next() {
					r, ok := pagewalk.ParseRevision(k)
					if !ok || r.Main > s.hi {
						break
					}
					if ob.Get(k) != nil {
						continue
					}
					if err := ob.Put(bytes.Clone(k), bytes.Clone(v)); err != nil {
						return err
					}
					n++
				}
			}
			return nil
		})
	})
	return n, err
}
