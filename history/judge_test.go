package history

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/boltfix/boltfix/pagewalk"
)

func put(main, create int64, reached bool) Version {
	return Version{Revision: pagewalk.Revision{Main: main}, CreateRevision: create, ModRevision: main, Reached: reached}
}

func tomb(main int64, reached bool) Version {
	return Version{Revision: pagewalk.Revision{Main: main, Tombstone: true}, Tombstone: true, Reached: reached}
}

// TestJudgeKey pins the state rules on the histories compaction leaves.
func TestJudgeKey(t *testing.T) {
	last := pagewalk.RevisionKey(pagewalk.Revision{Main: 1000})
	damaged := uncertain{iv: [][2][]byte{{pagewalk.RevisionKey(pagewalk.Revision{Main: 50}), pagewalk.RevisionKey(pagewalk.Revision{Main: 80})}}}
	for _, c := range []struct {
		name     string
		vs       []Version
		u        uncertain
		want     []State
		key      State
		deleted  int64
		mayBeOld bool
	}{
		{"live, older kept and compacted", []Version{put(10, 10, false), put(20, 10, true), put(30, 10, true)}, uncertain{},
			[]State{Compacted, Superseded, Live}, Live, 0, false},
		{"deleted, tombstone found", []Version{put(10, 10, false), put(20, 10, false), tomb(25, false)}, uncertain{},
			[]State{Compacted, Deleted, Deleted}, Deleted, 25, false},
		{"deleted, tombstone compacted", []Version{put(10, 10, false), put(20, 10, false)}, uncertain{},
			[]State{Compacted, Deleted}, Deleted, 0, true},
		{"re-created after a delete", []Version{put(10, 10, false), tomb(15, false), put(40, 40, true)}, uncertain{},
			[]State{Deleted, Deleted, Live}, Live, 0, false},
		{"newest under damage", []Version{put(10, 10, false), put(60, 10, false)}, damaged,
			[]State{Compacted, Unknown}, Unknown, 0, true},
		{"damage above the newest", []Version{put(10, 10, false), put(20, 10, false)}, damaged,
			[]State{Compacted, Deleted}, Unknown, 0, true},
		{"above the tree's last record", []Version{put(10, 10, true), put(2000, 10, false)}, uncertain{},
			[]State{Superseded, Unknown}, Unknown, 0, true},
	} {
		k := &Key{Key: "k", Versions: c.vs}
		judgeKey(k, c.u, last)
		for i, v := range k.Versions {
			if v.State != c.want[i] {
				t.Errorf("%s: version %d state %s, want %s", c.name, i, v.State, c.want[i])
			}
		}
		if k.State != c.key || k.DeletedAt != c.deleted || k.NewerMayBeLost != c.mayBeOld {
			t.Errorf("%s: key %s deleted at %d newer-may-be-lost %v; want %s %d %v", c.name, k.State, k.DeletedAt, k.NewerMayBeLost, c.key, c.deleted, c.mayBeOld)
		}
	}
}

func TestAt(t *testing.T) {
	last := pagewalk.RevisionKey(pagewalk.Revision{Main: 1000})
	// Deleted with its tombstone compacted at 100; versions at 10 (free
	// page) and 20 (free page).
	k := &Key{Versions: []Version{put(10, 10, false), put(20, 10, false)}}
	judgeKey(k, uncertain{}, last)
	if v, lost, unsure := k.At(15, 100); v == nil || v.ModRevision != 10 || lost || !unsure {
		t.Errorf("At(15) = %+v %v %v", v, lost, unsure)
	}
	if v, _, _ := k.At(100, 100); v != nil {
		t.Errorf("At(compact) of a key deleted by then = %+v", v)
	}
	if v, _, unsure := k.At(50, 100); v == nil || v.ModRevision != 20 || !unsure {
		t.Errorf("At(50): the delete may have come before 50: %+v %v", v, unsure)
	}
	// Live, with its creating version lost: existed at 15, nothing to show.
	k = &Key{Versions: []Version{put(20, 10, true)}}
	judgeKey(k, uncertain{}, last)
	if v, lost, _ := k.At(15, 5); v != nil || !lost {
		t.Errorf("At(15) of a key created at 10, first version found 20: %+v lost %v", v, lost)
	}
	if v, lost, unsure := k.At(25, 5); v == nil || lost || unsure {
		t.Errorf("At(25) = %+v %v %v", v, lost, unsure)
	}
}

// TestRawRecord finds a put record in headerless bytes and refuses near
// misses: a mod_revision that is not the record's revision, a key outside
// the prefix, fields out of etcd's order.
func TestRawRecord(t *testing.T) {
	kv := func(key string, mod uint64, value string, lease uint64) []byte {
		var b []byte
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, key)
		for i, x := range []uint64{3, mod, 2} {
			b = protowire.AppendTag(b, protowire.Number(2+i), protowire.VarintType)
			b = protowire.AppendVarint(b, x)
		}
		if value != "" {
			b = protowire.AppendTag(b, 5, protowire.BytesType)
			b = protowire.AppendString(b, value)
		}
		if lease != 0 {
			b = protowire.AppendTag(b, 6, protowire.VarintType)
			b = protowire.AppendVarint(b, lease)
		}
		return b
	}
	rk := pagewalk.RevisionKey(pagewalk.Revision{Main: 77})
	good := kv("/registry/a", 77, "v", 9)
	page := append(append(append([]byte("garbage_bytes\x00"), rk...), good...), pagewalk.RevisionKey(pagewalk.Revision{Main: 78})...)
	c := &collector{opts: Options{Prefix: []byte("/registry/")}, byRev: map[string]*Version{}, keyOf: map[*Version]string{}, res: &Result{}}
	c.scanWindow(page, len(page), 5, 4096)
	if c.res.RawRecords != 1 || c.res.Records != 1 {
		t.Fatalf("found %d raw records", c.res.RawRecords)
	}
	v := c.byRev[string(rk)]
	if v == nil || string(v.Value) != "v" || v.Lease != 9 || v.Pages[0] != 5 {
		t.Fatalf("record %+v", v)
	}
	for name, b := range map[string][]byte{
		"mod is not the revision": append(bytes.Clone(rk), kv("/registry/a", 76, "v", 0)...),
		"outside the prefix":      append(bytes.Clone(rk), kv("/other/a", 77, "v", 0)...),
		"fields out of order":     append(bytes.Clone(rk), protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 77)...),
	} {
		if _, _, ok := rawRecord(b, []byte("/registry/")); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}
