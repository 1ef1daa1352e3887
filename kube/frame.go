package kube

import (
	"bytes"
	"encoding/json"

	"google.golang.org/protobuf/encoding/protowire"
)

// Values carry no checksum, and random bytes over a page that continues a
// node (a node larger than one page) leave every page well-formed: nothing
// in the structure shows the change. A Kubernetes value does show most of
// them. apimachinery's protobuf serializer frames every object the same
// way, ending in two empty strings after the object's bytes, and a JSON
// object (a custom resource) must parse.

// FrameIntact reports whether value, a Kubernetes object as kube-apiserver
// stores it, is framed as the apiserver writes it:
//
//   - "k8s\x00" then a runtime.Unknown whose fields are typeMeta (1: the
//     apiVersion and kind, both non-empty printable strings), raw (2, the
//     object; absent when empty), contentEncoding (3) and contentType (4),
//     each once, in that order, length-delimited with minimal varints, the
//     last ending exactly where the value ends (runtime.Unknown's
//     MarshalToSizedBuffer writes exactly this);
//   - or a JSON value that parses (json.Valid).
//
// Other values (encrypted at rest: "k8s:enc:"; not Kubernetes) are not
// judged: FrameIntact returns true. Random bytes inside raw, short of its
// end, keep the frame: only decoding the object, and not always that, would
// show them.
func FrameIntact(value []byte) bool {
	switch {
	case bytes.HasPrefix(value, protoPrefix):
		return protoFrameIntact(value[len(protoPrefix):])
	case len(value) > 0 && (value[0] == '{' || value[0] == ' ' || value[0] == '\n'):
		if t := bytes.TrimLeft(value, " \t\r\n"); len(t) > 0 && t[0] == '{' {
			return json.Valid(value)
		}
	}
	return true
}

func protoFrameIntact(b []byte) bool {
	want := protowire.Number(1)
	for len(b) > 0 {
		num, typ, n := consumeMinimalTag(b)
		// Each field in turn; only raw (2) may be missing.
		if n < 0 || typ != protowire.BytesType || num != want && !(want == 2 && num == 3) {
			return false
		}
		b = b[n:]
		v, m := consumeMinimalBytes(b)
		if m < 0 {
			return false
		}
		if num == 1 && !typeMetaIntact(v) {
			return false
		}
		b = b[m:]
		want = num + 1
	}
	return want == 5
}

// typeMetaIntact: apiVersion (1) and kind (2), in order, both non-empty
// printable ASCII, nothing else.
func typeMetaIntact(b []byte) bool {
	for _, field := range []protowire.Number{1, 2} {
		num, typ, n := consumeMinimalTag(b)
		if n < 0 || num != field || typ != protowire.BytesType {
			return false
		}
		b = b[n:]
		v, m := consumeMinimalBytes(b)
		if m < 0 || len(v) == 0 {
			return false
		}
		for _, c := range v {
			if c < 0x21 || c > 0x7e {
				return false
			}
		}
		b = b[m:]
	}
	return len(b) == 0
}

func consumeMinimalTag(b []byte) (protowire.Number, protowire.Type, int) {
	v, n := protowire.ConsumeVarint(b)
	if n < 0 || protowire.SizeVarint(v) != n {
		return 0, 0, -1
	}
	num, typ := protowire.DecodeTag(v)
	if num < 1 {
		return 0, 0, -1
	}
	return num, typ, n
}

func consumeMinimalBytes(b []byte) ([]byte, int) {
	l, n := protowire.ConsumeVarint(b)
	if n < 0 || protowire.SizeVarint(l) != n || l > uint64(len(b)-n) {
		return nil, -1
	}
	return b[n : n+int(l)], n + int(l)
}
