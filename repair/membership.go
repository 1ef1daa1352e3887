package repair

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/boltfix/boltfix/membership"
	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/wal"
)

// Refusal is why repair wrote nothing: the data dir is one member of a
// cluster with other voting members, and a new one-member cluster made from
// it would be a second cluster next to the first, its data diverging from
// the moment it serves (a split brain). etcd's documented way back for one
// failed member is to replace it from its healthy peers (docs/recovery.md §9).
type Refusal struct {
	Reason string `json:"reason"`
	// Member is this data dir's member, as the membership knows it; nil
	// when the WAL metadata that names it is unreadable.
	Member *membership.Member `json:"member"`
	Voters int                `json:"voters"`
	// Quorum is the number of voting members that must be up for the
	// cluster to commit anything; QuorumLost is true when the other voters
	// alone are fewer (a two-member cluster without this one).
	Quorum     int  `json:"quorum"`
	QuorumLost bool `json:"quorum_lost"`
	// Procedure replaces this member from its healthy peers (etcd's
	// "replace a failed member"), filled in with its id, name and peer URLs.
	Procedure []string `json:"procedure"`
	// IfQuorumLost says what to do when the other members cannot form a
	// quorum.
	IfQuorumLost []string `json:"if_quorum_lost"`
}

// readMembership works out the cluster from the cheap sources, before any
// heavy work: the WAL (already read), the .snap files and, when given,
// the scan's summary of the db.
func readMembership(db string, log *wal.Log, sum *pagewalk.EtcdSummary) *membership.Membership {
	return membership.Build(membership.Sources{DB: sum, WAL: log, SnapDir: filepath.Dir(db)})
}

// earlyGate says whether to decide before the scan: when the WAL and the
// .snap files name this member fully, or when there is no db to add
// anything. Otherwise the db's members bucket may still give this member's
// name and peer URLs for the procedure, and the scan decides.
func earlyGate(m *membership.Membership, db string) bool {
	if s := m.Self(); s != nil && s.Name != "" && len(s.PeerURLs) > 0 {
		return true
	}
	_, err := os.Stat(db)
	return err != nil
}

// gate refuses a member of a multi-member cluster unless ForceNewCluster
// is set, in which case it warns. It reports whether the repair must stop
// (the plan then carries the refusal, has no steps, and nothing is
// written). It runs once before the scan when the WAL names this member
// fully, and again with what the db adds.
func (p *Plan) gate(m *membership.Membership) bool {
	p.Membership = m
	if !m.MultiMember() {
		return false
	}
	if p.opts.ForceNewCluster {
		if !p.ForceNewCluster {
			// The first of the two checks (WAL, then db) to see it warns.
			p.ForceNewCluster = true
			p.Warnings = append(p.Warnings, forceWarning(m))
			p.next = append(p.next, "before anything else: stop every other member of the original cluster for good; this dir is a new, separate cluster")
		}
		return false
	}
	p.Refused = refusal(m, p.Input)
	p.Strategy = StrategyRefused
	p.Why = append(p.Why, p.Refused.Reason)
	p.next = append(p.next, p.Refused.Procedure...)
	return true
}

func forceWarning(m *membership.Membership) string {
	var others []string
	for _, o := range m.Others() {
		others = append(others, memberLabel(o))
	}
	return fmt.Sprintf("--force-new-cluster: this data dir belongs to a cluster of %d voting members; the output is a NEW one-member cluster "+
		"made from this member's data alone. Never start it while %s run: it would be a second cluster whose data diverges from theirs "+
		"(a split brain). Use it only when the other members are gone for good; then add them back one by one with etcdctl member add and empty data dirs",
		m.Voters, strings.Join(others, ", "))
}

func memberLabel(x membership.Member) string {
	if x.Name == "" {
		return x.ID
	}
	return x.Name + " (" + x.ID + ")"
}

func refusal(m *membership.Membership, dataDir string) *Refusal {
	r := &Refusal{Voters: m.Voters, Quorum: m.Voters/2 + 1}
	others := m.Others()
	self := m.Self()
	if self != nil {
		cp := *self
		r.Member = &cp
	}
	r.QuorumLost = len(others) < r.Quorum
	var names []string
	for _, o := range others {
		names = append(names, memberLabel(o))
	}
	which := "the others"
	if self == nil {
		which = "which one this dir is, the WAL metadata would say"
	}
	r.Reason = fmt.Sprintf("this data dir is one member of a cluster of %d voting members (%s: %s): "+
		"a new one-member cluster made from it would split the cluster. Replace the member from its healthy peers instead; "+
		"--force-new-cluster writes the one-member cluster anyway", m.Voters, which, strings.Join(names, ", "))

	id, name, peers := "<member id: etcdctl member list>", "<member name>", "<peer URLs of this node>"
	if self != nil {
		id = self.ID
		if self.Name != "" {
			name = self.Name
		}
		if len(self.PeerURLs) > 0 {
			peers = strings.Join(self.PeerURLs, ",")
		}
	} else if m.SelfID != "" {
		id = m.SelfID
	}
	var endpoints []string
	for _, o := range others {
		endpoints = append(endpoints, o.ClientURLs...)
	}
	ep := "--endpoints=<client URL of a healthy member>"
	if len(endpoints) > 0 {
		ep = "--endpoints=" + strings.Join(endpoints, ",")
	}
	var ic []string
	for _, x := range m.Members {
		if x.IsLearner {
			continue
		}
		u, n := x.PeerURLs, x.Name
		if x.Self {
			n = name
		}
		for _, p := range u {
			ic = append(ic, n+"="+p)
		}
	}
	r.Procedure = []string{
		fmt.Sprintf("check that the other members serve and form a quorum (%d of %d voting members must be up; without this one, %d remain): "+
			"etcdctl %s endpoint health (and etcdctl %s member list -w table)", r.Quorum, m.Voters, len(others), ep, ep),
		fmt.Sprintf("stop etcd on this node (kubeadm: move /etc/kubernetes/manifests/etcd.yaml out of the manifests dir) and keep the damaged dir: mv %s %s.damaged", dataDir, dataDir),
		fmt.Sprintf("remove the broken member: etcdctl %s member remove %s", ep, id),
		fmt.Sprintf("add it back as a new member: etcdctl %s member add %s --peer-urls=%s", ep, name, peers),
		fmt.Sprintf("empty the data dir: mkdir -m 700 %s (etcd fetches the data from the leader)", dataDir),
		fmt.Sprintf("start etcd with --initial-cluster-state=existing and the --initial-cluster that member add printed (%s) "+
			"(kubeadm: set both flags in etcd.yaml, move it back into the manifests dir)", strings.Join(ic, ",")),
		fmt.Sprintf("check: etcdctl %s endpoint health --cluster; etcdctl %s endpoint status --cluster -w table", ep, ep),
	}
	lost := "if fewer than %d voting members are up, the cluster has lost quorum: member remove cannot commit."
	if r.QuorumLost {
		lost = "the cluster has lost quorum: without this member, fewer than %d voting members remain, so member remove cannot commit."
	}
	r.IfQuorumLost = []string{
		fmt.Sprintf(lost, r.Quorum),
		fmt.Sprintf("restore all members together from one data set, as etcd's disaster-recovery guide says: stop every member and run "+
			"boltfix repair with every member's data dir (%s and the others' DATA_DIRs) --out NEW_DIR; it writes NEW_DIR/<name> for each member, to start together", dataDir),
		"if another member's data dir is healthy: start that member once with etcd's own --force-new-cluster flag (it becomes a one-member cluster " +
			"keeping its data), then replace this member as in the procedure",
		fmt.Sprintf("or, from this data alone: boltfix repair %s --out NEW_DIR --force-new-cluster (a new one-member cluster; the other members stopped "+
			"for good), then add the others back one by one with etcdctl member add and empty data dirs", dataDir),
	}
	if r.QuorumLost {
		// member remove cannot commit: the replacement comes after one of
		// the ways back to a quorum.
		r.Procedure = append(append([]string{}, r.IfQuorumLost...), r.Procedure...)
	}
	return r
}
