package repair

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/boltfix/boltfix/pagewalk"
	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/server/v3/lease/leasepb"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Validation of what reaches etcd's code. The salvaged db is handed to
// etcd's store restore (the replay, etcdutl's restore, the start check),
// which trusts every byte: mvcc.BytesToRev panics on a key-bucket key that
// is not a 17/18-byte revision ("invalid revision length: 5": a nested
// bucket under key, which bbolt's cursor returns with a nil value, is
// one), restore calls lg.Fatal on a value that is not an mvccpb.KeyValue,
// keyIndex.put panics when a put and a tombstone share one revision, and
// the meta and lease readers panic on values of the wrong length. A panic
// there is a bug in boltfix, so every such record is taken out first, on
// the copy boltfix wrote, and reported.

// keepFreelist opens the salvaged db for the repair's own edits before the
// member dir is written: its commits write bbolt's freelist, as the
// salvage's last one did. A commit without it (NoFreelistSync, etcd's way)
// leaves the next open to find the free pages by walking the whole tree
// (bbolt's freepages, a second of CPU on a 5 GiB db), and the next open is
// etcd's own, in the member dir write.
var keepFreelist = &bolt.Options{Timeout: time.Second}

// maxListedInvalid bounds the records taken out that the notes name one by
// one.
const maxListedInvalid = 20

// invalidRecord is one record taken out of the salvaged db.
type invalidRecord struct {
	Bucket string
	Key    []byte
	// Rev is the main revision it held (key bucket), 0 when unknown.
	Rev int64
	Why string
}

// validateKeyRecord says why a key-bucket record would crash etcd's
// restore, or "" when it is safe. v == nil is a nested bucket.
func validateKeyRecord(k, v []byte) string {
	if v == nil {
		return "a nested bucket, not a record"
	}
	if !pagewalk.IsRevisionKey(k) {
		return fmt.Sprintf("key %x is not a 17/18-byte revision", k)
	}
	kv, err := pagewalk.ParseKeyValue(v)
	if err != nil {
		return "value is not an mvccpb.KeyValue: " + err.Error()
	}
	if len(kv.Key) == 0 {
		return "value names no key"
	}
	return ""
}

// sanitizeDB removes from the healthy db at path (one boltfix wrote) every
// record etcd's code would crash on. It returns what it removed.
func sanitizeDB(path string) ([]invalidRecord, error) {
	db, err := bolt.Open(path, 0o600, keepFreelist)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var out []invalidRecord
	err = db.Update(func(tx *bolt.Tx) error {
		var err error
		if b := tx.Bucket([]byte("key")); b != nil {
			if out, err = sanitizeKeyBucket(b, out); err != nil {
				return err
			}
		}
		if b := tx.Bucket([]byte("meta")); b != nil {
			if out, err = sanitizeMeta(b, out); err != nil {
				return err
			}
		}
		if b := tx.Bucket([]byte("lease")); b != nil {
			if out, err = sanitizeLeases(b, out); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

func sanitizeKeyBucket(b *bolt.Bucket, out []invalidRecord) ([]invalidRecord, error) {
	type bad struct {
		k      []byte
		bucket bool
	}
	var drop []bad
	c := b.Cursor()
	// A put and a tombstone at one revision (17 and 18 bytes, one main/sub)
	// sort next to each other: etcd's keyIndex.put panics on the second.
	var prev []byte
	for k, v := c.First(); k != nil; k, v = c.Next() {
		why := validateKeyRecord(k, v)
		rev, _ := pagewalk.ParseRevision(k)
		if why == "" && prev != nil && len(k) == 18 && bytes.Equal(prev, k[:17]) {
			why = fmt.Sprintf("a put and a tombstone share revision %d_%d", rev.Main, rev.Sub)
			drop = append(drop, bad{k: bytes.Clone(prev)})
			out = append(out, invalidRecord{Bucket: "key", Key: bytes.Clone(prev), Rev: rev.Main, Why: why})
		}
		if why != "" {
			drop = append(drop, bad{k: bytes.Clone(k), bucket: v == nil})
			out = append(out, invalidRecord{Bucket: "key", Key: bytes.Clone(k), Rev: rev.Main, Why: why})
			prev = nil
			continue
		}
		prev = nil
		if len(k) == 17 {
			prev = bytes.Clone(k)
		}
	}
	for _, d := range drop {
		var err error
		if d.bucket {
			err = b.DeleteBucket(d.k)
		} else {
			err = b.Delete(d.k)
		}
		if err != nil {
			return out, fmt.Errorf("remove invalid key record %x: %w", d.k, err)
		}
	}
	return out, nil
}

// metaRevisionKeys are the meta values etcd decodes with BytesToRev.
var metaRevisionKeys = []string{"scheduledCompactRev", "finishedCompactRev"}

func sanitizeMeta(b *bolt.Bucket, out []invalidRecord) ([]invalidRecord, error) {
	var drop [][]byte
	note := func(k []byte, why string) {
		drop = append(drop, bytes.Clone(k))
		out = append(out, invalidRecord{Bucket: "meta", Key: bytes.Clone(k), Why: why})
	}
	err := b.ForEach(func(k, v []byte) error {
		switch name := string(k); {
		case v == nil:
			note(k, "a nested bucket in meta")
		case name == "consistent_index" || name == "term":
			if len(v) != 8 {
				note(k, fmt.Sprintf("%d bytes, not 8", len(v)))
			}
		case name == metaRevisionKeys[0] || name == metaRevisionKeys[1]:
			// BytesToRev takes 17 or 18 bytes; etcd writes 17, no mark.
			if len(v) != 17 || !pagewalk.IsRevisionKey(v) {
				note(k, fmt.Sprintf("%x is not a 17-byte revision", v))
			}
		case name == "confState":
			var cs raftpb.ConfState
			if json.Unmarshal(v, &cs) != nil {
				note(k, "not a JSON raftpb.ConfState")
			}
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	for _, k := range drop {
		if b.Bucket(k) != nil {
			err = b.DeleteBucket(k)
		} else {
			err = b.Delete(k)
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// sanitizeLeases: schema.MustUnsafeGetAllLeases panics on a value that is
// not a leasepb.Lease, and on a key that is not 8 bytes.
func sanitizeLeases(b *bolt.Bucket, out []invalidRecord) ([]invalidRecord, error) {
	type bad struct {
		k      []byte
		bucket bool
	}
	var drop []bad
	err := b.ForEach(func(k, v []byte) error {
		why := ""
		var l leasepb.Lease
		switch {
		case v == nil:
			why = "a nested bucket in lease"
		case len(k) != 8:
			why = fmt.Sprintf("lease id %x is not 8 bytes", k)
		case proto.Unmarshal(v, &l) != nil:
			why = "value is not a leasepb.Lease"
		}
		if why != "" {
			drop = append(drop, bad{bytes.Clone(k), v == nil})
			out = append(out, invalidRecord{Bucket: "lease", Key: bytes.Clone(k), Why: why})
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	for _, d := range drop {
		if d.bucket {
			err = b.DeleteBucket(d.k)
		} else {
			err = b.Delete(d.k)
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}
