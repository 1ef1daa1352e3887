package fuzz

import (
	"bytes"
	"testing"

	"github.com/boltfix/boltfix/pagewalk"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// FuzzKeyValue: pagewalk.ParseKeyValue (protowire, no copies) accepts
// exactly what proto.Unmarshal accepts for an mvccpb.KeyValue and reads the
// same key, value and revisions; it never panics.
func FuzzKeyValue(f *testing.F) {
	for _, kv := range []*mvccpb.KeyValue{
		{Key: []byte("/registry/pods/default/a"), CreateRevision: 2, ModRevision: 9, Version: 3, Value: []byte("k8s\x00\x01"), Lease: 7},
		{Key: []byte("/registry/events/x")},
		{},
	} {
		b, err := proto.Marshal(kv)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xed, 0x7c, 0x16, 0xf8, 0x75, 0xd9, 0x81, 0xfa, 0x88, 0xad, 0x13}) // field number past the maximum
	f.Fuzz(func(t *testing.T, b []byte) {
		var want mvccpb.KeyValue
		werr := proto.Unmarshal(b, &want)
		got, gerr := pagewalk.ParseKeyValue(b)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("proto: %v, ParseKeyValue: %v", werr, gerr)
		}
		if werr == nil && (!bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Value, want.Value) || got.ModRevision != want.ModRevision ||
			got.CreateRevision != want.CreateRevision || got.Version != want.Version || got.Lease != want.Lease) {
			t.Fatalf("fields differ: %+v vs %v", got, &want)
		}
	})
}
