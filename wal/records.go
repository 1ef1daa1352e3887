package wal

import (
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/server/v3/storage/mvcc"
)

// KeyRecord is one record of etcd's key bucket: the 17-byte revision key (18
// with the tombstone mark 't') and the marshalled mvccpb.KeyValue.
type KeyRecord struct {
	Key   []byte
	Value []byte
}

// Revision decodes the record's bucket key.
func (r KeyRecord) Revision() (main, sub int64, tombstone bool) {
	if len(r.Key) < 17 {
		return 0, 0, false
	}
	rev := mvcc.BytesToRev(r.Key[:17])
	return rev.Main, rev.Sub, len(r.Key) == 18 && r.Key[17] == 't'
}

// ForEachRecord calls fn with every key-bucket record of the healthy db at
// path (one a replay wrote) whose main revision is above after, in
// revision order, read from the db one at a time: a replay of a whole WAL
// writes as many records as the WAL has puts, and nothing holds them all.
// The record's bytes are bbolt's and valid only during the call. An error
// from fn stops the walk and is returned.
func ForEachRecord(path string, after int64, fn func(KeyRecord) error) error {
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("wal: read back replayed records: %w", err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		kb := tx.Bucket([]byte("key"))
		if kb == nil {
			return nil
		}
		if after == math.MaxInt64 {
			return nil
		}
		start := mvcc.RevToBytes(mvcc.Revision{Main: after + 1}, mvcc.NewRevBytes())
		c := kb.Cursor()
		for k, v := c.Seek(start); k != nil; k, v = c.Next() {
			if err := fn(KeyRecord{Key: k, Value: v}); err != nil {
				return err
			}
		}
		return nil
	})
}

// CrossCheck compares records a replay produced with the records a damaged
// db still holds at the same revisions.
type CrossCheck struct {
	// Records counts the records the replay produced.
	Records int `json:"records"`
	Matched int `json:"matched"`
	// Differ lists revisions whose record in the db is not what the replay
	// wrote: the WAL and the db disagree (or the carved record is damaged).
	Differ []string `json:"differ"`
	// OnlyReplayed counts revisions the db no longer has: the replay
	// recovered them.
	OnlyReplayed int `json:"only_replayed"`
}

// CompareRecords checks the records a replay wrote into the db at path
// (those above revision after: ForEachRecord) against a lookup of the
// damaged db's key-bucket records by bucket key (17 or 18 bytes). Because
// revision records are immutable and replay is deterministic (the same
// entries on the same state give the same revisions), a record present on
// both sides must be byte-identical. lookup sees every replayed record's
// key once, in revision order (the key's bytes are valid only during the
// call).
func CompareRecords(path string, after int64, lookup func(bucketKey []byte) ([]byte, bool)) (CrossCheck, error) {
	var c CrossCheck
	err := ForEachRecord(path, after, func(r KeyRecord) error {
		c.Records++
		v, ok := lookup(r.Key)
		switch {
		case !ok:
			c.OnlyReplayed++
		case string(v) == string(r.Value):
			c.Matched++
		default:
			main, sub, tomb := r.Revision()
			s := fmt.Sprintf("%d_%d", main, sub)
			if tomb {
				s += "t"
			}
			c.Differ = append(c.Differ, s)
		}
		return nil
	})
	return c, err
}
