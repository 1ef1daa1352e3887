package salvage

import (
	"bytes"
	"math/bits"
	"sort"

	"github.com/boltfix/boltfix/spill"
	"github.com/cespare/xxhash/v2"
)

// keyTable is the keyState of every etcd key seen. A db of a few GiB holds
// millions of keys, so nothing in it is a heap object per key: the states
// and the key bytes are chunked tables (in a spill file when the salvage
// spills, package spill), and the index is an open-addressing table of
// 8-byte slots.
//
// Each slot holds 32 bits of the key's hash beside its index: keys arrive
// in revision order, so every lookup lands on a random slot, and a probe
// that compared key bytes would cost two more cache misses (the state,
// then its name) for every slot it passes. With the hash in the slot, a
// lookup reads the key bytes only for the slot that holds it (or a 1 in
// 2^32 collision), and growing the index reads no key at all.
type keyTable struct {
	names  *spill.Bytes
	states *spill.Array[keyState]
	slots  []uint64 // hash<<32 | index+1; 0 is empty; len is a power of 2
	shift  uint     // 64 - log2(len(slots))
	objs   []string
}

const initialKeySlots = 1024

func newKeyTable(d *spill.Dir) keyTable {
	return keyTable{names: spill.NewBytes(d), states: spill.NewArray[keyState](d),
		slots: make([]uint64, initialKeySlots), shift: uint(64 - bits.TrailingZeros(initialKeySlots))}
}

// keyHash is the 32 bits of k's hash a slot keeps.
func keyHash(k []byte) uint32 { return uint32(xxhash.Sum64(k)) }

// home is where a probe for hash h starts: its top bits after a
// multiplicative mix, so the slot depends on all 32 bits kept.
func (t *keyTable) home(h uint32) int { return int((uint64(h) * 0x9e3779b97f4a7c15) >> t.shift) }

// find returns k's slot: the one holding it, or the empty one where it
// would go.
func (t *keyTable) find(k []byte) (slot int, found bool) {
	h := keyHash(k)
	mask := len(t.slots) - 1
	for i := t.home(h); ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == 0 {
			return i, false
		}
		if uint32(s>>32) == h && bytes.Equal(t.names.Get(t.states.At(slotIndex(s)).name), k) {
			return i, true
		}
	}
}

// slotIndex is the index into states a full slot holds.
func slotIndex(s uint64) int { return int(uint32(s)) - 1 }

// get returns k's state, or nil.
func (t *keyTable) get(k []byte) *keyState {
	i, ok := t.find(k)
	if !ok {
		return nil
	}
	return t.states.At(slotIndex(t.slots[i]))
}

// getName is get for a key held as a string.
func (t *keyTable) getName(k string) *keyState { return t.get([]byte(k)) }

// add returns k's state, adding a zero one if k is new. A pointer from get
// or add may not outlive the next add (the states may move when they do
// not spill).
func (t *keyTable) add(k []byte) *keyState {
	i, ok := t.find(k)
	if ok {
		return t.states.At(slotIndex(t.slots[i]))
	}
	n := t.states.Append(keyState{name: t.names.Add(k)})
	t.slots[i] = uint64(keyHash(k))<<32 | uint64(n+1)
	if 2*t.states.Len() > len(t.slots) {
		t.grow()
	}
	return t.states.At(n)
}

// grow doubles the index, placing every slot again from the hash it
// holds.
func (t *keyTable) grow() {
	old := t.slots
	t.slots = make([]uint64, 2*len(old))
	t.shift--
	mask := len(t.slots) - 1
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := t.home(uint32(s >> 32))
		for t.slots[i] != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
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
