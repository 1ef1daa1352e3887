package salvage

import (
	"fmt"

	"github.com/boltfix/boltfix/pagewalk"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
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

// decodeRecord validates an etcd key-bucket record: the value must be an
// mvccpb.KeyValue that agrees with its revision key. A put carries its
// own revision as mod_revision; a tombstone's value holds only the key.
// These cross-checks are what make a carved record trustworthy.
func decodeRecord(rev pagewalk.Revision, v []byte) (*mvccpb.KeyValue, error) {
	var kv mvccpb.KeyValue
	if err := proto.Unmarshal(v, &kv); err != nil {
		return nil, err
	}
	if len(kv.Key) == 0 {
		return nil, fmt.Errorf("empty key")
	}
	if rev.Tombstone {
		if kv.ModRevision != 0 && kv.ModRevision != rev.Main {
			return nil, fmt.Errorf("tombstone mod_revision %d for revision %d", kv.ModRevision, rev.Main)
		}
		return &kv, nil
	}
	if kv.ModRevision != rev.Main {
		return nil, fmt.Errorf("mod_revision %d for revision %d", kv.ModRevision, rev.Main)
	}
	if kv.CreateRevision <= 0 || kv.CreateRevision > kv.ModRevision || kv.Version <= 0 {
		return nil, fmt.Errorf("create_revision %d / version %d inconsistent with revision %d", kv.CreateRevision, kv.Version, rev.Main)
	}
	return &kv, nil
}
