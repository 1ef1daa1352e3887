// Package membership works out the cluster an etcd data dir belongs to: how
// many voting members, their ids, names and peer URLs, and which of them the
// data dir is. Repairing one member of a multi-member cluster as a new
// one-member cluster splits the cluster (docs/recovery.md §9); everything that
// writes a member dir asks this package first.
//
// The sources, each optional, are the ones etcd itself keeps:
//   - the WAL metadata record: this member's id and the cluster id;
//   - conf states: the WAL's snapshot records, the .snap files' metadata and
//     the db's meta/confState, each at a raft index; the newest wins;
//   - the WAL's committed conf changes above that index (add, remove,
//     promote), applied in order;
//   - names and URLs: the db's members bucket, the .snap files' v2 store
//     (/0/members/<id>/{attributes,raftAttributes}), the conf changes'
//     context and member-attr-set entries;
//   - removals: the db's members_removed bucket, the v2 store's
//     /0/removed_members and the WAL's remove-node entries.
//
// Every source may be damaged: nothing here panics on its bytes, and a
// source that cannot be read is listed in Notes, not trusted.
package membership

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/wal"
	"go.etcd.io/raft/v3/raftpb"
)

// Member is one member of the cluster.
type Member struct {
	// ID is the member id in hex, as etcdctl prints it.
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peer_urls"`
	ClientURLs []string `json:"client_urls"`
	IsLearner  bool     `json:"is_learner"`
	// Self marks the member whose data dir this is (the WAL metadata's
	// node id).
	Self bool `json:"self"`

	id uint64
}

// Membership is what a data dir says about its cluster.
type Membership struct {
	// Known is true when some source named the members.
	Known bool `json:"known"`
	// SelfID and ClusterID come from the WAL metadata; "" when unknown.
	SelfID    string `json:"self_id"`
	ClusterID string `json:"cluster_id"`
	// Members are the current members (voters and learners), sorted by
	// name then id. Voters counts those that vote.
	Members []Member `json:"members"`
	Voters  int      `json:"voters"`
	// Removed are the ids of members removed from the cluster.
	Removed []string `json:"removed"`
	// Index is the raft index the conf state was taken at (the newest
	// source), before the WAL's later conf changes; ConfFrom names it.
	Index    uint64 `json:"conf_index"`
	ConfFrom string `json:"conf_from"`
	// Sources lists what was read; Notes what could not be, and where
	// sources disagree.
	Sources []string `json:"sources"`
	Notes   []string `json:"notes"`
}

// Sources are the inputs Build reads; every field is optional.
type Sources struct {
	// DB is the scan's summary of the db (members, members_removed,
	// meta/confState, consistent_index).
	DB *pagewalk.EtcdSummary
	// WAL is the member's log as wal.Read found it.
	WAL *wal.Log
	// SnapDir is member/snap, whose *.snap files hold raft snapshots.
	SnapDir string
}

// confState is a set of voters and learners at a raft index.
type confState struct {
	index    uint64
	from     string
	voters   []uint64
	learners []uint64
}

type builder struct {
	m       *Membership
	attrs   map[uint64]*Member
	removed map[uint64]bool
	confs   []confState
}

func (b *builder) member(id uint64) *Member {
	m := b.attrs[id]
	if m == nil {
		m = &Member{id: id, ID: HexID(id)}
		b.attrs[id] = m
	}
	return m
}

// setAttrs fills what a source says of a member; later sources (the WAL)
// override earlier ones.
func (b *builder) setAttrs(id uint64, name string, peers, clients []string) {
	if id == 0 {
		return
	}
	m := b.member(id)
	if name != "" {
		m.Name = name
	}
	if len(peers) > 0 {
		m.PeerURLs = peers
	}
	if len(clients) > 0 {
		m.ClientURLs = clients
	}
}

// Build combines the sources into the membership.
func Build(src Sources) *Membership {
	b := &builder{m: &Membership{Members: []Member{}, Removed: []string{}, Sources: []string{}, Notes: []string{}},
		attrs: map[uint64]*Member{}, removed: map[uint64]bool{}}
	dbMembers := b.fromDB(src.DB)
	b.fromSnapDir(src.SnapDir)
	var changes []*wal.Entry
	if src.WAL != nil {
		changes = b.fromWAL(src.WAL)
	}

	// The newest conf state, then the committed conf changes after it.
	voters, learners := map[uint64]bool{}, map[uint64]bool{}
	var base *confState
	for i := range b.confs {
		if base == nil || b.confs[i].index > base.index {
			base = &b.confs[i]
		}
	}
	applied := false
	if base != nil {
		b.m.Index, b.m.ConfFrom = base.index, base.from
		for _, id := range base.voters {
			voters[id] = true
		}
		for _, id := range base.learners {
			learners[id] = true
		}
	}
	for _, e := range changes {
		// Without a conf state, only a WAL that holds the whole history
		// (the bootstrap conf changes from index 1) gives the set.
		if base == nil && src.WAL.FirstIndex() != 1 {
			break
		}
		if base != nil && e.GetIndex() <= base.index {
			continue
		}
		applied = true
		b.applyConfChange(e, voters, learners)
	}
	if base == nil && applied {
		b.m.ConfFrom = "wal conf changes from index 1"
	}
	switch {
	case base != nil || applied:
		b.m.Known = true
	case len(dbMembers) > 0:
		// Only the members bucket: its entries are the members.
		b.m.Known, b.m.ConfFrom = true, "db members bucket"
		for _, id := range dbMembers {
			if !b.removed[id] {
				if b.attrs[id].IsLearner {
					learners[id] = true
				} else {
					voters[id] = true
				}
			}
		}
	}
	if b.m.Known && len(dbMembers) > 0 && src.DB.ConsistentIndex != nil && *src.DB.ConsistentIndex >= b.m.Index {
		b.crossCheck(dbMembers, voters, learners)
	}

	self := uint64(0)
	if src.WAL != nil && src.WAL.Metadata != nil {
		self = src.WAL.Metadata.NodeID
		b.m.SelfID, b.m.ClusterID = HexID(self), HexID(src.WAL.Metadata.ClusterID)
	}
	for id := range voters {
		m := *b.member(id)
		m.IsLearner, m.Self = false, id == self
		b.m.Members = append(b.m.Members, m)
	}
	for id := range learners {
		if voters[id] {
			continue
		}
		m := *b.member(id)
		m.IsLearner, m.Self = true, id == self
		b.m.Members = append(b.m.Members, m)
	}
	b.m.Voters = len(voters)
	sort.Slice(b.m.Members, func(i, j int) bool {
		a, c := b.m.Members[i], b.m.Members[j]
		if a.Name != c.Name {
			return a.Name < c.Name
		}
		return a.id < c.id
	})
	for id := range b.removed {
		b.m.Removed = append(b.m.Removed, HexID(id))
	}
	sort.Strings(b.m.Removed)
	if self != 0 && b.m.Known && b.m.Self() == nil {
		if b.removed[self] {
			b.m.Notes = append(b.m.Notes, fmt.Sprintf("this member (%s) was removed from the cluster", HexID(self)))
		} else {
			b.m.Notes = append(b.m.Notes, fmt.Sprintf("this member (%s, from the WAL metadata) is not in the membership", HexID(self)))
		}
	}
	return b.m
}

// fromDB reads the members and members_removed buckets and meta/confState;
// it returns the ids of the members bucket.
func (b *builder) fromDB(s *pagewalk.EtcdSummary) []uint64 {
	if s == nil || !s.IsEtcd {
		return nil
	}
	var ids []uint64
	for _, dm := range s.Members {
		id, err := strconv.ParseUint(dm.ID, 16, 64)
		if err != nil || id == 0 {
			b.m.Notes = append(b.m.Notes, fmt.Sprintf("db members bucket: key %q is not a member id", dm.ID))
			continue
		}
		b.setAttrs(id, dm.Name, dm.PeerURLs, dm.ClientURLs)
		b.member(id).IsLearner = dm.IsLearner
		ids = append(ids, id)
	}
	for _, r := range s.RemovedMembers {
		if id, err := strconv.ParseUint(r, 16, 64); err == nil && id != 0 {
			b.removed[id] = true
		}
	}
	b.m.Sources = append(b.m.Sources, fmt.Sprintf("db members bucket (%d members, %d removed)", len(ids), len(s.RemovedMembers)))
	if s.ConfState != "" {
		var cs struct {
			Voters   []uint64 `json:"voters"`
			Learners []uint64 `json:"learners"`
		}
		if err := json.Unmarshal([]byte(s.ConfState), &cs); err != nil || len(cs.Voters) == 0 || s.ConsistentIndex == nil {
			b.m.Notes = append(b.m.Notes, "db meta/confState unreadable")
		} else {
			b.confs = append(b.confs, confState{index: *s.ConsistentIndex, from: fmt.Sprintf("db meta/confState at consistent_index %d", *s.ConsistentIndex),
				voters: cs.Voters, learners: cs.Learners})
		}
	}
	return ids
}

// fromWAL takes the WAL's snapshot records as conf states, names from conf
// change contexts and attribute updates, and returns the committed conf
// change entries in index order.
func (b *builder) fromWAL(l *wal.Log) []*wal.Entry {
	commit := l.CommitIndex()
	snaps := 0
	for _, s := range l.Snapshots {
		if s.Flag != "" || s.ConfState == nil || len(s.Voters) == 0 || (commit > 0 && s.Index > commit) {
			continue
		}
		snaps++
		b.confs = append(b.confs, confState{index: s.Index, from: fmt.Sprintf("wal snapshot record at index %d", s.Index),
			voters: s.Voters, learners: s.Learners})
	}
	var changes []*wal.Entry
	for _, me := range l.MembershipEntries() {
		e, d := me.Entry, me.Decoded
		if e.GetIndex() > commit {
			break // never known to be committed
		}
		switch {
		case d.ConfChange != nil:
			changes = append(changes, e)
			var c confContext
			if json.Unmarshal(d.ConfChange.GetContext(), &c) == nil {
				b.setAttrs(d.ConfChange.GetNodeId(), c.Name, c.PeerURLs, c.ClientURLs)
			}
		case d.Request != nil && d.Request.ClusterMemberAttrSet != nil:
			a := d.Request.ClusterMemberAttrSet
			if a.MemberAttributes != nil {
				b.setAttrs(a.Member_ID, a.MemberAttributes.Name, nil, a.MemberAttributes.ClientUrls)
			}
		case d.V2 != nil:
			// etcd 3.5 and older publish attributes as a v2 PUT.
			if id, ok := v2MemberAttr(d.V2.Path); ok {
				var at confContext
				if json.Unmarshal([]byte(d.V2.Val), &at) == nil {
					b.setAttrs(id, at.Name, nil, at.ClientURLs)
				}
			}
		}
	}
	src := fmt.Sprintf("wal entries %d..%d (commit %d): %d conf changes, %d snapshot records", l.FirstIndex(), l.LastIndex(), commit, len(changes), snaps)
	if l.Metadata != nil {
		src += fmt.Sprintf("; metadata: member %s of cluster %s", HexID(l.Metadata.NodeID), HexID(l.Metadata.ClusterID))
	}
	b.m.Sources = append(b.m.Sources, src)
	return changes
}

// confContext is the part of etcd's membership.Member (a conf change's
// context, in JSON) and of its v2 attributes that names a member.
type confContext struct {
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner"`
	IsPromote  bool     `json:"isPromote"`
}

func (b *builder) applyConfChange(e *wal.Entry, voters, learners map[uint64]bool) {
	d := wal.DecodeEntry(e)
	cc := d.ConfChange
	if cc == nil {
		return
	}
	id := cc.GetNodeId()
	var c confContext
	_ = json.Unmarshal(cc.GetContext(), &c)
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode:
		// etcd promotes a learner with an add-node whose context says so.
		voters[id] = true
		delete(learners, id)
		delete(b.removed, id)
	case raftpb.ConfChangeAddLearnerNode:
		learners[id] = true
		delete(b.removed, id)
	case raftpb.ConfChangeRemoveNode:
		delete(voters, id)
		delete(learners, id)
		b.removed[id] = true
	}
}

// crossCheck notes where the db's members bucket, at or after the conf
// state's index, disagrees with the computed membership.
func (b *builder) crossCheck(dbMembers []uint64, voters, learners map[uint64]bool) {
	in := map[uint64]bool{}
	for _, id := range dbMembers {
		in[id] = true
		if !voters[id] && !learners[id] {
			b.m.Notes = append(b.m.Notes, fmt.Sprintf("db members bucket lists %s, which the %s does not", HexID(id), b.m.ConfFrom))
		}
	}
	for id := range voters {
		if !in[id] {
			b.m.Notes = append(b.m.Notes, fmt.Sprintf("the %s has voter %s, which the db members bucket lacks", b.m.ConfFrom, HexID(id)))
		}
	}
}

// v2MemberAttr parses "/0/members/<hex id>/attributes".
func v2MemberAttr(path string) (uint64, bool) {
	rest, ok := strings.CutPrefix(path, "/0/members/")
	if !ok {
		return 0, false
	}
	hex, ok := strings.CutSuffix(rest, "/attributes")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseUint(hex, 16, 64)
	return id, err == nil && id != 0
}

// HexID prints a member or cluster id as etcd does (types.ID.String).
func HexID(id uint64) string { return strconv.FormatUint(id, 16) }

// Self is this data dir's member, nil when unknown or not a member.
func (m *Membership) Self() *Member {
	for i := range m.Members {
		if m.Members[i].Self {
			return &m.Members[i]
		}
	}
	return nil
}

// Others are the voting members other than this one.
func (m *Membership) Others() []Member {
	var out []Member
	for _, x := range m.Members {
		if !x.Self && !x.IsLearner {
			out = append(out, x)
		}
	}
	return out
}

// MultiMember reports whether the cluster has a voting member other than
// this data dir's: then this data alone must not become a new cluster.
// Without the WAL metadata nothing says which member this is: then any
// second voter counts.
func (m *Membership) MultiMember() bool {
	if m == nil || !m.Known {
		return false
	}
	if m.SelfID == "" {
		return m.Voters > 1
	}
	return len(m.Others()) > 0
}

// Summary is the one-line human form, e.g. "3 voting members: cp-1
// dc611daaf5818b6e, cp-2 819bbb33fb1591c (this one), cp-3 4a3df689f713184c".
func (m *Membership) Summary() string {
	if m == nil || !m.Known {
		return "unknown (no conf state, conf change or members bucket could be read)"
	}
	var parts []string
	for _, x := range m.Members {
		s := x.Name
		if s == "" {
			s = "(unnamed)"
		}
		s += " " + x.ID
		if x.IsLearner {
			s += " learner"
		}
		if x.Self {
			s += " (this one)"
		}
		parts = append(parts, s)
	}
	noun := "voting members"
	if m.Voters == 1 {
		noun = "voting member"
	}
	out := fmt.Sprintf("%d %s: %s", m.Voters, noun, strings.Join(parts, ", "))
	if m.SelfID != "" && m.Self() == nil {
		out += fmt.Sprintf("; this data dir is member %s, not among them", m.SelfID)
	}
	return out
}
