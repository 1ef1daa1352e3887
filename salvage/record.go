package salvage

import (
	"errors"
	"fmt"

	"github.com/boltfix/boltfix/pagewalk"
	"google.golang.org/protobuf/encoding/protowire"
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

// keyValue is the part of an mvccpb.KeyValue salvage judges by. Key
// aliases the record's bytes.
type keyValue struct {
	Key            []byte
	CreateRevision int64
	ModRevision    int64
	Version        int64
}

// Field numbers of mvccpb.KeyValue (api/v3/mvccpb/kv.proto).
const (
	kvKey            = 1
	kvCreateRevision = 2
	kvModRevision    = 3
	kvVersion        = 4
	kvValue          = 5
)

var errNotKeyValue = errors.New("not an mvccpb.KeyValue")

// parseKeyValue reads an mvccpb.KeyValue with protowire, field by field,
// without copying the value: salvage reads every record of the db, and
// proto.Unmarshal would copy each value only to throw it away. It accepts
// what proto.Unmarshal accepts for this message (TestParseKeyValueMatchesProto).
func parseKeyValue(b []byte) (keyValue, error) {
	var kv keyValue
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return kv, fmt.Errorf("%w: %v", errNotKeyValue, protowire.ParseError(n))
		}
		if num > protowire.MaxValidNumber {
			return kv, fmt.Errorf("%w: field number %d", errNotKeyValue, num)
		}
		b = b[n:]
		want := protowire.VarintType
		if num == kvKey || num == kvValue {
			want = protowire.BytesType
		}
		// A known field with another wire type is kept as an unknown
		// field by proto.Unmarshal, not rejected: skip it the same way.
		known := num >= kvKey && num <= kvVersion && typ == want
		switch {
		case !known:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return kv, fmt.Errorf("%w: %v", errNotKeyValue, protowire.ParseError(n))
			}
		case num == kvKey:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return kv, fmt.Errorf("%w: %v", errNotKeyValue, protowire.ParseError(m))
			}
			kv.Key, n = v, m
		case num >= kvCreateRevision && num <= kvVersion:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return kv, fmt.Errorf("%w: %v", errNotKeyValue, protowire.ParseError(m))
			}
			switch num {
			case kvCreateRevision:
				kv.CreateRevision = int64(v)
			case kvModRevision:
				kv.ModRevision = int64(v)
			case kvVersion:
				kv.Version = int64(v)
			}
			n = m
		}
		b = b[n:]
	}
	return kv, nil
}

// decodeRecord validates an etcd key-bucket record: the value must be an
// mvccpb.KeyValue that agrees with its revision key. A put carries its
// own revision as mod_revision; a tombstone's value holds only the key.
// These cross-checks are what make a carved record trustworthy. The
// KeyValue is returned even when only the cross-checks fail.
func decodeRecord(rev pagewalk.Revision, v []byte) (keyValue, error) {
	kv, err := parseKeyValue(v)
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
