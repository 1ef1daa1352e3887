package membership

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.uber.org/zap"
)

// maxSnapFile bounds the .snap file read: snap.Read reads it whole. A v2
// store of a v3 cluster holds the membership only (kilobytes); anything
// this large is not one etcd wrote.
const maxSnapFile = 256 << 20

// fromSnapDir reads the newest .snap file that reads cleanly: its metadata's
// conf state and its v2 store's members.
func (b *builder) fromSnapDir(dir string) {
	if dir == "" {
		return
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.snap"))
	// %016x-%016x (term-index) names sort by age.
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	for _, name := range names {
		if err := b.readSnap(name); err != nil {
			b.m.Notes = append(b.m.Notes, fmt.Sprintf("%s: %v", filepath.Base(name), err))
			continue
		}
		return
	}
}

func (b *builder) readSnap(path string) (err error) {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Size() > maxSnapFile {
		return fmt.Errorf("%d bytes: too large for a .snap file, not read", st.Size())
	}
	defer func() {
		// snap.Read is etcd's; a panic on hostile bytes is a skipped source.
		if r := recover(); r != nil {
			err = fmt.Errorf("unreadable: %v", r)
		}
	}()
	s, err := snap.Read(zap.NewNop(), path)
	if err != nil {
		return err
	}
	cs := s.GetMetadata().GetConfState()
	if len(cs.GetVoters()) == 0 {
		return fmt.Errorf("snapshot at index %d has no voters", s.GetMetadata().GetIndex())
	}
	base := filepath.Base(path)
	b.confs = append(b.confs, confState{index: s.GetMetadata().GetIndex(), from: fmt.Sprintf("%s (snapshot at index %d)", base, s.GetMetadata().GetIndex()),
		voters: cs.GetVoters(), learners: cs.GetLearners()})
	n := b.fromV2Store(s.GetData())
	b.m.Sources = append(b.m.Sources, fmt.Sprintf("%s: conf state at index %d, %d members in its v2 store", base, s.GetMetadata().GetIndex(), n))
	return nil
}

// v2Node is a node of etcd's v2 store as a .snap file holds it (JSON).
type v2Node struct {
	Value    string             `json:"Value"`
	Children map[string]*v2Node `json:"Children"`
}

// fromV2Store takes names and peer URLs from /0/members and removals from
// /0/removed_members; it returns how many members it found.
func (b *builder) fromV2Store(data []byte) int {
	var st struct {
		Root *v2Node `json:"Root"`
	}
	if json.Unmarshal(data, &st) != nil || st.Root == nil {
		return 0
	}
	zero := st.Root.Children["0"]
	if zero == nil {
		return 0
	}
	for hex := range zero.child("removed_members").childrenOrNil() {
		if id, err := strconv.ParseUint(hex, 16, 64); err == nil && id != 0 {
			b.removed[id] = true
		}
	}
	n := 0
	for hex, node := range zero.child("members").childrenOrNil() {
		id, err := strconv.ParseUint(hex, 16, 64)
		if err != nil || id == 0 || node == nil {
			continue
		}
		var attr, raft confContext
		_ = json.Unmarshal([]byte(node.child("attributes").value()), &attr)
		_ = json.Unmarshal([]byte(node.child("raftAttributes").value()), &raft)
		b.setAttrs(id, attr.Name, raft.PeerURLs, attr.ClientURLs)
		n++
	}
	return n
}

func (n *v2Node) child(name string) *v2Node {
	if n == nil {
		return nil
	}
	return n.Children[name]
}

func (n *v2Node) childrenOrNil() map[string]*v2Node {
	if n == nil {
		return nil
	}
	return n.Children
}

func (n *v2Node) value() string {
	if n == nil {
		return ""
	}
	return n.Value
}
