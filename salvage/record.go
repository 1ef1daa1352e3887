package salvage

import (
	"errors"
	"fmt"

	"github.com/boltfix/boltfix/pagewalk"
)

// RecordError says why a revision-shaped record was not taken.
type RecordError struct {
	Bucket string
	Key    []byte
	Page   uint64
	Err    error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("page %d: %s record %x: %v", e.Page, e.Bucket, e.Key, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// keyValue is the part of an mvccpb.KeyValue salvage judges by.
type keyValue = pagewalk.KeyValue

var errNotKeyValue = pagewalk.ErrNotKeyValue

// decodeRecord validates an etcd key-bucket record: the value must be an
// mvccpb.KeyValue that agrees with its revision key. A put carries its
// own revision as mod_revision; a tombstone's value holds only the key.
// These cross-checks are what make a carved record trustworthy. The
// KeyValue is returned even when only the cross-checks fail.
func decodeRecord(rev pagewalk.Revision, v []byte) (keyValue, error) {
	kv, err := pagewalk.ParseKeyValue(v)
	if err != nil {
		return kv, err
	}
	if len(kv.Key) == 0 {
		return kv, errors.New("empty key")
	}
	if rev.Tombstone {
		if kv.ModRevision != 0 && kv.ModRevision != rev.Main {
			return kv, fmt.Errorf("tombstone mod_revision %d for revision %d", kv.ModRevision, rev.Main)
		}
		return kv, nil
	}
	if kv.ModRevision != rev.Main {
		return kv, fmt.Errorf("mod_revision %d for revision %d", kv.ModRevision, rev.Main)
	}
	if kv.CreateRevision <= 0 || kv.CreateRevision > kv.ModRevision || kv.Version <= 0 {
		return kv, fmt.Errorf("create_revision %d / version %d inconsistent with revision %d", kv.CreateRevision, kv.Version, rev.Main)
	}
	return kv, nil
}
