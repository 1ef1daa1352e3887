package wal

// MembershipEntry is an entry that changes or names the members, decoded.
type MembershipEntry struct {
	*Entry
	Decoded DecodedEntry
}

// MembershipEntries returns the entries that change or name the members,
// decoded, in index order: conf changes, member attributes (etcd 3.6+'s
// ClusterMemberAttrSet) and etcd 3.5's v2 requests (member attributes and
// the cluster version went through the v2 store). They are a handful in a
// WAL of puts; finding them reads every entry's data, so it is done once
// per Log and kept (a repair asks before and after its scan of the db).
func (l *Log) MembershipEntries() []MembershipEntry {
	l.membersOnce.Do(func() {
		for _, e := range l.Entries {
			if e.Type == 0 && e.Size == 0 {
				continue // a leader's no-op
			}
			d := DecodeEntry(e)
			if d.ConfChange != nil || d.V2 != nil || (d.Request != nil && d.Request.ClusterMemberAttrSet != nil) {
				l.members = append(l.members, MembershipEntry{Entry: e, Decoded: d})
			}
		}
	})
	return l.members
}
