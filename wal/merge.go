package wal

import (
	"bytes"
	"fmt"
	"sort"
)

// Merge combines the WALs of several members of one cluster into one log.
// Committed raft entries are identical on every member (same index, term
// and data), so the union covers more than any one: a purged or torn prefix
// or tail on one member is often whole on another. names label the logs in
// the conflicts returned (names[i] for logs[i]).
//
// The commit index is the highest any member persisted: an entry a member
// knew committed was committed for the whole cluster. At each index the
// entry kept is, in order of preference: one its member knew committed, one
// read without damage, the highest term (raft's own rule for entries that
// were never committed), the most members holding it. Two committed copies
// that differ are a conflict: reported, never resolved silently (the
// preference above still picks one so that the caller can go on).
func Merge(logs []*Log, names []string) (*Log, []string) {
	out := &Log{}
	var conflicts []string
	type cand struct {
		e         *Entry
		committed bool
		member    int
		data      []byte // the entry's data, loaded when copies are compared
		loaded    bool   // data is the entry's (false: a single copy, or unreadable)
	}
	byIndex := map[uint64][]cand{}
	for i, l := range logs {
		if l == nil {
			continue
		}
		if out.Metadata == nil {
			out.Metadata = l.Metadata
		}
		if l.HardState != nil && (out.HardState == nil || l.HardState.Commit > out.HardState.Commit) {
			hs := *l.HardState
			out.HardState = &hs
		}
		out.HardStates += l.HardStates
		out.Snapshots = append(out.Snapshots, l.Snapshots...)
		out.Suspect = append(out.Suspect, l.Suspect...)
		commit := l.CommitIndex()
		for _, e := range l.Entries {
			if e.Flag == FlagCRCMismatch {
				continue
			}
			byIndex[e.GetIndex()] = append(byIndex[e.GetIndex()], cand{e: e, committed: e.GetIndex() <= commit, member: i})
		}
	}
	sort.Slice(out.Snapshots, func(i, j int) bool { return out.Snapshots[i].Index < out.Snapshots[j].Index })
	idx := make([]uint64, 0, len(byIndex))
	for i := range byIndex {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(i, j int) bool { return idx[i] < idx[j] })
	name := func(i int) string {
		if i < len(names) {
			return names[i]
		}
		return fmt.Sprintf("log %d", i)
	}
	for _, i := range idx {
		cs := byIndex[i]
		// Copies are compared by their data, read once per copy and only
		// where members' copies meet: the union holds no entry's data.
		if len(cs) > 1 {
			for j := range cs {
				if re, err := cs[j].e.Load(); err == nil {
					cs[j].data, cs[j].loaded = re.GetData(), true
				}
			}
		}
		same := func(a, b cand) bool {
			if a.e == b.e {
				return true
			}
			// A copy whose data could not be read again equals no other.
			return a.loaded && b.loaded && a.e.GetTerm() == b.e.GetTerm() && a.e.GetType() == b.e.GetType() && bytes.Equal(a.data, b.data)
		}
		votes := func(c cand) int {
			n := 0
			for _, o := range cs {
				if same(c, o) {
					n++
				}
			}
			return n
		}
		sort.SliceStable(cs, func(a, b int) bool {
			x, y := cs[a], cs[b]
			if x.committed != y.committed {
				return x.committed
			}
			if (x.e.Flag == FlagNone) != (y.e.Flag == FlagNone) {
				return x.e.Flag == FlagNone
			}
			if x.e.GetTerm() != y.e.GetTerm() {
				return x.e.GetTerm() > y.e.GetTerm()
			}
			return votes(x) > votes(y)
		})
		best := cs[0]
		for _, c := range cs[1:] {
			if c.committed && best.committed && !same(best, c) {
				conflicts = append(conflicts, fmt.Sprintf("entry %d: %s and %s hold different committed copies (term %d and %d); %s's kept",
					i, name(best.member), name(c.member), best.e.GetTerm(), c.e.GetTerm(), name(best.member)))
			}
		}
		out.Entries = append(out.Entries, best.e)
	}
	out.Gaps = gaps(out.Entries)
	return out, conflicts
}
