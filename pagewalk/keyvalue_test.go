package pagewalk

import (
	"bytes"
	"math/rand"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

// ParseKeyValue must accept and reject what proto.Unmarshal does, and read
// the same fields.
func TestParseKeyValueMatchesProto(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	good, _ := proto.Marshal(&mvccpb.KeyValue{Key: []byte("/registry/pods/a/b"), CreateRevision: 5, ModRevision: 9, Version: 3, Value: []byte("k8s\x00xyz"), Lease: 7})
	for i := 0; i < 20000; i++ {
		b := bytes.Clone(good)
		switch i % 3 {
		case 0:
			for j := 0; j < 1+rnd.Intn(4); j++ {
				b[rnd.Intn(len(b))] ^= byte(1 << rnd.Intn(8))
			}
		case 1:
			b = b[:rnd.Intn(len(b)+1)]
		case 2:
			b = make([]byte, rnd.Intn(40))
			rnd.Read(b)
		}
		var want mvccpb.KeyValue
		werr := proto.Unmarshal(b, &want)
		got, gerr := ParseKeyValue(b)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%x: proto err %v, ours %v", b, werr, gerr)
		}
		if werr == nil && (!bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Value, want.Value) || got.ModRevision != want.ModRevision ||
			got.CreateRevision != want.CreateRevision || got.Version != want.Version || got.Lease != want.Lease) {
			t.Fatalf("%x: fields differ: %+v vs %v", b, got, &want)
		}
	}
}
