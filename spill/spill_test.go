package spill

import (
	"bytes"
	"fmt"
	"testing"
)

type entry struct {
	a, b int64
	c    uint8
}

// An Array keeps what was appended, spilled or not, and a spilled chunk
// never moves: a pointer taken early still sees later writes through At.
func TestArray(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		d := New(dir)
		a := NewArray[entry](d)
		const n = 400_000 // several 4 MiB chunks of 24-byte entries
		for i := 0; i < n; i++ {
			if got := a.Append(entry{a: int64(i), b: -int64(i), c: uint8(i)}); got != i {
				t.Fatalf("dir %q: Append returned %d, want %d", dir, got, i)
			}
		}
		first := a.At(0)
		first.b = 42
		for i := 0; i < n; i += 997 {
			e := a.At(i)
			if e.a != int64(i) || e.c != uint8(i) || (i > 0 && e.b != -int64(i)) {
				t.Fatalf("dir %q: element %d is %+v", dir, i, *e)
			}
		}
		if d.Enabled() {
			a.Append(entry{})
			if first.b != 42 || a.At(0).b != 42 {
				t.Fatalf("spilled element moved")
			}
		}
		if err := d.Err(); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBytes(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		d := New(dir)
		b := NewBytes(d)
		var refs []Ref
		var want [][]byte
		for i := 0; i < 200_000; i++ {
			p := []byte(fmt.Sprintf("/registry/pods/ns-%d/pod-%d", i%97, i))
			if i == 1000 {
				p = bytes.Repeat([]byte{'x'}, 5<<20) // larger than a chunk
			}
			refs = append(refs, b.Add(p))
			want = append(want, p)
		}
		for i, r := range refs {
			if !bytes.Equal(b.Get(r), want[i]) {
				t.Fatalf("dir %q: string %d differs", dir, i)
			}
		}
		d.Close()
	}
}

// Slice reserves the whole capacity in a sparse file: appending within it
// stays in the mapping; a failed spill (a dir that does not exist) leaves
// the slice on the heap and says why.
func TestSlice(t *testing.T) {
	d := New(t.TempDir())
	s := Slice[int64](d, 1<<20)
	if s == nil || cap(s) != 1<<20 {
		t.Fatalf("no spilled slice: cap %d", cap(s))
	}
	p := &s[:1][0]
	for i := 0; i < 1<<20; i++ {
		s = append(s, int64(i))
	}
	if &s[0] != p {
		t.Fatal("appending within the capacity moved the slice")
	}
	d.Close()

	bad := New("/nonexistent/boltfix-spill")
	if s := Slice[int64](bad, 1<<20); s != nil {
		t.Fatal("a spill into a missing dir returned a slice")
	}
	if bad.Err() == nil {
		t.Fatal("a failed spill left no error")
	}
}

func TestSliceRefusesPointers(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Slice of a type with pointers did not panic")
		}
	}()
	Slice[[]byte](New(t.TempDir()), 1<<20)
}
