package wal

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// V2Request is etcd's old v2 store request (etcdserverpb.Request in etcd 3.5
// and earlier). etcd 3.6+ no longer has the type, but a WAL written by 3.4 or
// 3.5 can still hold it: bare as an entry's data, or as field 2 (v2) of an
// InternalRaftRequest. The ones that matter to the v3 state are the
// membership writes "PUT /0/members/<id>/attributes" and "PUT /0/version".
type V2Request struct {
	ID         uint64 `json:"id"`
	Method     string `json:"method"`
	Path       string `json:"path"`
	Val        string `json:"val,omitempty"`
	Dir        bool   `json:"dir,omitempty"`
	PrevValue  string `json:"prev_value,omitempty"`
	PrevIndex  uint64 `json:"prev_index,omitempty"`
	PrevExist  *bool  `json:"prev_exist,omitempty"`
	Expiration int64  `json:"expiration,omitempty"`
	Recursive  bool   `json:"recursive,omitempty"`
	Time       int64  `json:"time,omitempty"`
	Refresh    *bool  `json:"refresh,omitempty"`
}

// protoField is one top-level field of an encoded message.
type protoField struct {
	num   protowire.Number
	typ   protowire.Type
	v     uint64 // varint / fixed value
	bytes []byte // bytes value
}

// scanFields splits b into its top-level fields; ok is false if b is not a
// well-formed protobuf message. Values alias b.
func scanFields(b []byte) (fs []protoField, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		f := protoField{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.v = uint64(v)
		case protowire.BytesType:
			f.bytes, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		fs = append(fs, f)
	}
	return fs, true
}

// v2Methods are the methods etcd's v2 API put into a Request.
var v2Methods = map[string]bool{"GET": true, "QGET": true, "PUT": true, "POST": true, "DELETE": true, "HEAD": true, "SYNC": true}

// decodeV2 recognises the two v2 forms of a normal entry's data. It returns
// nil when data is not one.
func decodeV2(data []byte) *V2Request {
	fs, ok := scanFields(data)
	if !ok {
		return nil
	}
	var f2 *protoField
	for i := range fs {
		if fs[i].num == 2 && fs[i].typ == protowire.BytesType {
			f2 = &fs[i]
		}
	}
	if f2 == nil {
		return nil
	}
	if v2Methods[string(f2.bytes)] {
		return parseV2(fs)
	}
	// InternalRaftRequest.v2 = 2: a nested Request.
	inner, ok := scanFields(f2.bytes)
	if !ok {
		return nil
	}
	r := parseV2(inner)
	if r == nil || !v2Methods[r.Method] {
		return nil
	}
	return r
}

func parseV2(fs []protoField) *V2Request {
	r := &V2Request{}
	for _, f := range fs {
		switch f.typ {
		case protowire.BytesType:
			switch f.num {
			case 2:
				r.Method = string(f.bytes)
			case 3:
				r.Path = string(f.bytes)
			case 4:
				r.Val = string(f.bytes)
			case 6:
				r.PrevValue = string(f.bytes)
			}
		case protowire.VarintType:
			b := f.v != 0
			switch f.num {
			case 1:
				r.ID = f.v
			case 5:
				r.Dir = b
			case 7:
				r.PrevIndex = f.v
			case 8:
				r.PrevExist = &b
			case 9:
				r.Expiration = int64(f.v)
			case 12:
				r.Recursive = b
			case 15:
				r.Time = int64(f.v)
			case 17:
				r.Refresh = &b
			}
		}
	}
	if r.Method == "" {
		return nil
	}
	return r
}
