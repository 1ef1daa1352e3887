package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/boltfix/boltfix/membership"
	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/repair"
	"github.com/boltfix/boltfix/salvage"
	"github.com/boltfix/boltfix/wal"
)

// dbMembership works out the cluster of the etcd db at dbPath: from its
// scan summary and, when the db is DATA_DIR/member/snap/db, from the WAL and
// .snap files next to it. nil when the db is not etcd's.
func dbMembership(dbPath string, sum *pagewalk.EtcdSummary) *membership.Membership {
	if sum == nil || !sum.IsEtcd {
		return nil
	}
	src := membership.Sources{DB: sum}
	if snapDir := filepath.Dir(dbPath); filepath.Base(snapDir) == "snap" {
		src.SnapDir = snapDir
		// A WAL that cannot be read adds nothing; wal verify says why.
		if l, err := wal.Read(filepath.Join(filepath.Dir(snapDir), "wal")); err == nil {
			src.WAL = l
			defer l.Close()
		}
	}
	return membership.Build(src)
}

// scanJSON and salvageJSON add the membership to the reports' JSON (a new
// top-level field of the same schemas).
type scanJSON struct {
	*pagewalk.Report
	Membership *membership.Membership `json:"membership"`
}

type salvageJSON struct {
	*salvage.Report
	Membership *membership.Membership `json:"membership"`
}

// printMembership prints the membership section of scan and salvage.
func printMembership(w io.Writer, m *membership.Membership) {
	if m == nil {
		return
	}
	section(w, "membership")
	prose(w, "", m.Summary())
	if m.MultiMember() {
		prose(w, "", fmt.Sprintf("This is one member of a cluster of %d voting members: do not make a one-member cluster of it next to the others. "+
			"boltfix repair refuses it and prints etcd's procedure to replace the member (README: HA control planes).", m.Voters))
	}
}

// printRefusal prints why repair wrote nothing and etcd's procedure to
// replace the member.
func printRefusal(w io.Writer, r *repair.Report) {
	f := r.Refused
	fmt.Fprintf(w, "boltfix repair %s: REFUSED, nothing written\n", r.Input)
	prose(w, "membership: ", r.Membership.Summary())
	prose(w, "", f.Reason)
	if f.Member != nil {
		prose(w, "this member: ", fmt.Sprintf("id %s, name %s, peer URLs %s", f.Member.ID, f.Member.Name, strings.Join(f.Member.PeerURLs, ",")))
	}
	if f.QuorumLost {
		prose(w, "", fmt.Sprintf("QUORUM LOST: %d voting members, quorum %d; without this one the others cannot commit", f.Voters, f.Quorum))
	}
	section(w, "replace this member (etcd's procedure)")
	for i, n := range f.Procedure {
		prose(w, fmt.Sprintf("  %d. ", i+1), n)
	}
	if !f.QuorumLost {
		section(w, "if the cluster has lost quorum")
		for _, n := range f.IfQuorumLost {
			prose(w, "  - ", n)
		}
	}
}
