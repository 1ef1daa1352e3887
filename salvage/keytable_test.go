package salvage

import (
	"fmt"
	"testing"
)

// TestKeyTable adds enough keys to grow the index many times, and checks
// that every key finds its own state, a key never added finds none, and
// adding a key twice keeps one state.
func TestKeyTable(t *testing.T) {
	kt := newKeyTable(nil)
	const n = 200_000
	key := func(i int) []byte { return fmt.Appendf(nil, "/registry/pods/ns-%d/pod-%d", i%97, i) }
	for i := 0; i < n; i++ {
		kt.add(key(i)).latest.Main = int64(i + 1)
	}
	for i := 0; i < n; i += 7 {
		kt.add(key(i)) // again: no second state
	}
	if kt.len() != n {
		t.Fatalf("%d states for %d keys", kt.len(), n)
	}
	for i := 0; i < n; i++ {
		s := kt.get(key(i))
		if s == nil || s.latest.Main != int64(i+1) || string(kt.name(s)) != string(key(i)) {
			t.Fatalf("key %d: got %+v", i, s)
		}
	}
	for i := n; i < n+1000; i++ {
		if s := kt.get(key(i)); s != nil {
			t.Fatalf("key %d was never added but found %q", i, kt.name(s))
		}
	}
	if 2*kt.len() > len(kt.slots) {
		t.Fatalf("index over half full: %d keys in %d slots", kt.len(), len(kt.slots))
	}
}
