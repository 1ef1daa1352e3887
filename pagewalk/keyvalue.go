package pagewalk

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// KeyValue is the part of an mvccpb.KeyValue that recovery judges a
// record by. Key aliases the record's bytes.
type KeyValue struct {
	Key            []byte
	Value          []byte // aliases the record's bytes
	CreateRevision int64
	ModRevision    int64
	Version        int64
	Lease          int64
}

// Field numbers of mvccpb.KeyValue (api/v3/mvccpb/kv.proto).
const (
	kvKey            = 1
	kvCreateRevision = 2
	kvModRevision    = 3
	kvVersion        = 4
	kvValue          = 5
	kvLease          = 6
)

// ErrNotKeyValue: a key-bucket value that is not an mvccpb.KeyValue.
var ErrNotKeyValue = errors.New("not an mvccpb.KeyValue")

// ParseKeyValue reads an mvccpb.KeyValue with protowire, field by field,
// without copying the value: salvage reads every record of the db, and so does scan --deep, and
// proto.Unmarshal would copy each value only to throw it away. It accepts
// what proto.Unmarshal accepts for this message (TestParseKeyValueMatchesProto).
func ParseKeyValue(b []byte) (KeyValue, error) {
	var kv KeyValue
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return kv, fmt.Errorf("%w: %v", ErrNotKeyValue, protowire.ParseError(n))
		}
		if num > protowire.MaxValidNumber {
			return kv, fmt.Errorf("%w: field number %d", ErrNotKeyValue, num)
		}
		b = b[n:]
		want := protowire.VarintType
		if num == kvKey || num == kvValue {
			want = protowire.BytesType
		}
		// A known field with another wire type is kept as an unknown
		// field by proto.Unmarshal, not rejected: skip it the same way.
		known := (num >= kvKey && num <= kvVersion || num == kvValue || num == kvLease) && typ == want
		switch {
		case !known:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return kv, fmt.Errorf("%w: %v", ErrNotKeyValue, protowire.ParseError(n))
			}
		case num == kvKey || num == kvValue:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return kv, fmt.Errorf("%w: %v", ErrNotKeyValue, protowire.ParseError(m))
			}
			if num == kvKey {
				kv.Key = v
			} else {
				kv.Value = v
			}
			n = m
		case num >= kvCreateRevision && num <= kvVersion || num == kvLease:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return kv, fmt.Errorf("%w: %v", ErrNotKeyValue, protowire.ParseError(m))
			}
			switch num {
			case kvCreateRevision:
				kv.CreateRevision = int64(v)
			case kvModRevision:
				kv.ModRevision = int64(v)
			case kvVersion:
				kv.Version = int64(v)
			case kvLease:
				kv.Lease = int64(v)
			}
			n = m
		}
		b = b[n:]
	}
	return kv, nil
}
