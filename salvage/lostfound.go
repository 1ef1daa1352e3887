package salvage

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// LostFoundBucket is the top-level bucket that holds every record salvage
// found but cannot prove current, or cannot place, as SQLite's .recover
// keeps such rows in lost_and_found. Nothing in it is in the live buckets.
//
// When the input already has a top-level bucket of that name (a file
// salvaged before), the first free name of lost+found.1, lost+found.2, ...
// is used. Layout: one record per found record, keyed by a 12-digit sequence number
// ("000000000001", in page order, so `bbolt keys` lists them in order);
// the value is a JSON LostFoundEntry.
const LostFoundBucket = "lost+found"

// LostFoundEntry is the value of one lost+found record.
type LostFoundEntry struct {
	// Page holds the record; Status says what the file proves about it:
	// "orphan" (current, but where it belongs is not proven), "free" (an
	// older version: the freelist lists its page), "unproven" (no synced
	// freelist to tell), "past-hwm".
	Page   uint64 `json:"page"`
	Status string `json:"status"`
	// Bucket is the guessed bucket path (text and hex), outermost first;
	// empty when there is no guess. NameHint is a bucket name an older
	// page gives the subtree's root, when that is the only guess.
	Bucket    []string `json:"bucket"`
	BucketHex []string `json:"bucket_hex"`
	NameHint  string   `json:"name_hint,omitempty"`
	Key       string   `json:"key"` // printable rendering
	KeyHex    string   `json:"key_hex"`
	ValueHex  string   `json:"value_hex"`
}

// lostFound writes lost+found entries.
type lostFound struct {
	w *dbWriter
	// name is LostFoundBucket, or LostFoundBucket.N when the input already
	// has a bucket of that name (a file salvaged before).
	name  []byte
	seq   uint64
	pages map[uint64]bool
	sum   *LostFoundSummary
}

func (lf *lostFound) add(path [][]byte, hint []byte, r orphanRecord, status pageStatus) error {
	// A record identical to the one the output holds at its guessed path
	// adds nothing.
	if len(path) > 0 {
		if v := lf.w.get(path, r.key); v != nil && bytes.Equal(v, r.value) {
			lf.sum.Duplicates++
			return nil
		}
	}
	e := LostFoundEntry{Page: r.page, Status: string(status), Bucket: []string{}, BucketHex: []string{},
		Key: printableKey(r.key), KeyHex: hex.EncodeToString(r.key), ValueHex: hex.EncodeToString(r.value)}
	for _, p := range path {
		e.Bucket = append(e.Bucket, printableKey(p))
		e.BucketHex = append(e.BucketHex, hex.EncodeToString(p))
	}
	if hint != nil {
		e.NameHint = printableKey(hint)
	}
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	lf.seq++
	lf.sum.Bucket = string(lf.name)
	lf.sum.Records++
	lf.sum.Status[string(status)]++
	if !lf.pages[r.page] {
		lf.pages[r.page] = true
		lf.sum.Pages++
	}
	return lf.w.put([][]byte{lf.name}, []byte(fmt.Sprintf("%012d", lf.seq)), v, 0.9)
}

// get returns the value of k in the bucket at path of the output, or nil.
func (w *dbWriter) get(path [][]byte, k []byte) []byte {
	if err := w.drain(); err != nil {
		return nil
	}
	if err := w.begin(); err != nil || len(path) == 0 {
		return nil
	}
	b := w.tx.Bucket(path[0])
	for _, p := range path[1:] {
		if b == nil {
			return nil
		}
		b = b.Bucket(p)
	}
	if b == nil {
		return nil
	}
	return b.Get(k)
}
