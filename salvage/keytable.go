package salvage

import (
	"bytes"
	"sort"

	"github.com/boltfix/boltfix/spill"
	"github.com/cespare/xxhash/v2"
)

// keyTable is the keyState of every etcd key seen. A db of a few GiB holds
// millions of keys, so nothing in it is a heap object per key: the states
// and the key bytes are chunked tables (in a spill file when the salvage
// spills, package spill), and the index is an open-addressing table of
// 4-byte slots, rebuilt from the stored keys as it grows.
type keyTable struct {
	names  *spill.Bytes
	states *spill.Array[keyState]
	slots  []uint32 // index+1 into states; 0 is empty; len is a power of 2
	objs   []string
}

func newKeyTable(d *spill.Dir) keyTable {
	return keyTable{names: spill.NewBytes(d), states: spill.NewArray[keyState](d), slots: make([]uint32, 1024)}
}

// find returns k's slot: the one holding it, or the empty one where it
// would go.
func (t *keyTable) find(k []byte) (slot int, found bool) {
	mask := len(t.slots) - 1
	for i := int(xxhash.Sum64(k)) & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return i, false
		}
		if bytes.Equal(t.names.Get(t.states.At(int(s-1)).name), k) {
			return i, true
		}
	}
}

// get returns k's state, or nil.
func (t *keyTable) get(k []byte) *keyState {
	i, ok := t.find(k)
	if !ok {
		return nil
	}
	return t.states.At(int(t.slots[i] - 1))
}

// getName is get for a key held as a string.
func (t *keyTable) getName(k string) *keyState { return t.get([]byte(k)) }

// add returns k's state, adding a zero one if k is new. A pointer from get
// or add may not outlive the next add (the states may move when they do
// not spill).
func (t *keyTable) add(k []byte) *keyState {
	i, ok := t.find(k)
	if ok {
		return t.states.At(int(t.slots[i] - 1))
	}
	n := t.states.Append(keyState{name: t.names.Add(k)})
	t.slots[i] = uint32(n + 1)
	if 2*t.states.Len() > len(t.slots) {
		t.grow()
	}
	return t.states.At(n)
}

// grow doubles the index, placing every key again.
func (t *keyTable) grow() {
	t.slots = make([]uint32, 2*len(t.slots))
	mask := len(t.slots) - 1
	for n := 0; n < t.states.Len(); n++ {
		i := int(xxhash.Sum64(t.names.Get(t.states.At(n).name))) & mask
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = uint32(n + 1)
	}
}

func (t *keyTable) len() int { return t.states.Len() }

// sorted returns the index of every key's state, in key order (4 bytes a
// key, not a string each).
func (t *keyTable) sorted() []int32 {
	out := make([]int32, t.states.Len())
	for i := range out {
		out[i] = int32(i)
	}
	sort.Slice(out, func(i, j int) bool {
		return bytes.Compare(t.name(t.states.At(int(out[i]))), t.name(t.states.At(int(out[j])))) < 0
	})
	return out
}

// at returns the state at index i (from sorted).
func (t *keyTable) at(i int32) *keyState { return t.states.At(int(i)) }

// name returns s's key; it aliases the table.
func (t *keyTable) name(s *keyState) []byte { return t.names.Get(s.name) }

// setObject sets s's left-out object name.
func (t *keyTable) setObject(s *keyState, name string) {
	t.objs = append(t.objs, name)
	s.leftOutObj = int32(len(t.objs))
}

// object returns s's left-out object name, or "".
func (t *keyTable) object(s *keyState) string {
	if s.leftOutObj == 0 {
		return ""
	}
	return t.objs[s.leftOutObj-1]
}
