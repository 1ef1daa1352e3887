package salvage

import (
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/boltfix/boltfix/kube"
)

// judgeKeys lists the keys whose newest surviving record is older than
// some lost range (stale, or deleted in the lost range), and builds the
// Kubernetes ledger. It visits the keys in table order (a db of a few GiB
// holds millions: sorting them all cost seconds); only the keys that go
// into a list are sorted, so the lists hold the first MaxListed in key
// order.
func judgeKeys(ks *keySpace, rep *Report, opts Options) {
	ledger := map[string]*ResourceLedger{}
	var leftOut []int32
	var stale []staleCandidate
	for i := 0; i < ks.keys.len(); i++ {
		s := ks.keys.at(int32(i))
		l := ledgerOf(ledger, ks.keys.name(s))
		if !s.written {
			// Seen on disk, nothing written: a key the output lacks
			// because its records were left out (no evidence either way),
			// or were all proven compacted (a deleted key).
			if s.uncertain {
				rep.LeftOutCount++
				if l != nil {
					l.LeftOut++
				}
				leftOut = append(leftOut, int32(i))
			} else if l != nil {
				l.Deleted++
			}
			continue
		}
		latest := s.wLatest
		if l != nil {
			if latest.Tombstone {
				l.Deleted++
			} else {
				l.Live++
			}
		}
		if s.uncertain && revLess(latest, s.latest) {
			// A newer record of the key was left out: what was written
			// may be stale.
			rep.PossiblyStaleCount++
			if l != nil && !latest.Tombstone {
				l.PossiblyStale++
			}
			stale = append(stale, staleCandidate{key: int32(i), lost: -1})
			continue
		}
		for ri, r := range rep.LostRevisions {
			if r[1] != 0 && r[1] <= latest.Main {
				continue
			}
			rep.PossiblyStaleCount++
			if l != nil && !latest.Tombstone {
				l.PossiblyStale++
			}
			stale = append(stale, staleCandidate{key: int32(i), lost: ri})
			break
		}
	}
	byName := func(a, b int32) bool {
		return bytes.Compare(ks.keys.name(ks.keys.at(a)), ks.keys.name(ks.keys.at(b))) < 0
	}
	sort.Slice(leftOut, func(i, j int) bool { return byName(leftOut[i], leftOut[j]) })
	for _, i := range leftOut[:min(len(leftOut), opts.MaxListed)] {
		s := ks.keys.at(i)
		rep.LeftOut = append(rep.LeftOut, LeftOutKey{Key: string(ks.keys.name(s)), Revision: s.latest.Main, Object: ks.keys.object(s),
			Reason: "its only records on disk were left out: no evidence whether compaction kept them (see uncertain; --aggressive keeps them)"})
	}
	sort.Slice(stale, func(i, j int) bool { return byName(stale[i].key, stale[j].key) })
	for _, c := range stale[:min(len(stale), opts.MaxListed)] {
		s := ks.keys.at(c.key)
		k := string(ks.keys.name(s))
		latest := s.wLatest
		if c.lost < 0 {
			rep.PossiblyStale = append(rep.PossiblyStale, StaleKey{Key: k, Revision: latest.Main, Deleted: latest.Tombstone, LostFrom: s.latest.Main, LostTo: s.latest.Main, Object: objectOfKey(k)})
			continue
		}
		r := rep.LostRevisions[c.lost]
		sk := StaleKey{Key: k, Revision: latest.Main, Deleted: latest.Tombstone, LostFrom: r[0], LostTo: r[1], Object: objectOfKey(k)}
		if l := ledgerOf(ledger, []byte(k)); l != nil && l.Regenerated {
			sk.Recoverable = l.Note
		}
		rep.PossiblyStale = append(rep.PossiblyStale, sk)
	}
	for _, l := range ledger {
		l.Recovered = l.Live - l.PossiblyStale
		l.Lost = l.LeftOut
		rep.Ledger = append(rep.Ledger, *l)
	}
	sort.Slice(rep.Ledger, func(i, j int) bool { return rep.Ledger[i].Resource < rep.Ledger[j].Resource })
}

// staleCandidate is a possibly stale key: its index in the key table, and
// the lost range it may have changed in (-1: a newer record of it was left
// out).
type staleCandidate struct {
	key  int32
	lost int
}

// ledgerOf returns the ledger line of key's Kubernetes resource, adding
// it; nil for a key outside /registry/.
// The lookup of a []byte converted in place does not allocate: no string
// per key.
func ledgerOf(ledger map[string]*ResourceLedger, key []byte) *ResourceLedger {
	res := resourceOfBytes(key)
	if len(res) == 0 {
		return nil
	}
	l := ledger[string(res)]
	if l == nil {
		name := string(res)
		regen, note := regenerated(name)
		l = &ResourceLedger{Resource: name, Regenerated: regen, Note: note}
		ledger[name] = l
	}
	return l
}

// resourceOfBytes is resourceOf of a key held as bytes; nil for none.
func resourceOfBytes(key []byte) []byte {
	rest, ok := bytes.CutPrefix(key, []byte("/registry/"))
	if !ok {
		return nil
	}
	end := bytes.IndexByte(rest, '/')
	if end < 0 {
		return rest
	}
	if bytes.IndexByte(rest[:end], '.') >= 0 {
		if next := bytes.IndexByte(rest[end+1:], '/'); next >= 0 {
			end += 1 + next
		} else {
			end = len(rest)
		}
	}
	return rest[:end]
}

// objectOfKey names the Kubernetes object a /registry key holds, as
// "resource namespace/name", or "".
func objectOfKey(k string) string {
	p, ok := kube.ParseKey([]byte(k))
	if !ok {
		return ""
	}
	if p.Namespace == "" {
		return p.Resource + " " + p.Name
	}
	return p.Resource + " " + p.Namespace + "/" + p.Name
}

// resourceOf returns the Kubernetes resource of a /registry key, e.g.
// "pods" or "apiextensions.k8s.io/customresourcedefinitions".
func resourceOf(key string) string {
	rest, ok := strings.CutPrefix(key, "/registry/")
	if !ok {
		return ""
	}
	parts := strings.Split(rest, "/")
	if len(parts) >= 2 && strings.Contains(parts[0], ".") {
		return parts[0] + "/" + parts[1]
	}
	return parts[0]
}

// regenerated says whether controllers recreate a resource's objects
// after loss, and what the admin should know.
func regenerated(res string) (bool, string) {
	switch res {
	case "events", "events.k8s.io/events":
		return true, "events are transient: losing them loses only history"
	case "services/endpoints", "endpoints":
		return true, "the endpoints controller rebuilds them from services and pods"
	case "endpointslices", "discovery.k8s.io/endpointslices":
		return true, "the endpointslice controller rebuilds them"
	case "leases", "coordination.k8s.io/leases", "masterleases":
		return true, "components renew their leases within seconds"
	case "minions":
		return true, "kubelets re-register their nodes"
	case "pods":
		return true, "pods owned by a ReplicaSet, DaemonSet, StatefulSet or Job are recreated; bare pods are not"
	case "replicasets":
		return true, "Deployments recreate their ReplicaSets (history may differ)"
	case "controllerrevisions":
		return true, "DaemonSets and StatefulSets recreate them"
	}
	return false, "source of truth: restore from manifests or GitOps if lost"
}

// nextSteps tells the admin what to run next.
func nextSteps(rep *Report) {
	dataDir, newDir := "DATA_DIR", "NEW_DIR"
	if d, ok := DataDirOf(rep.Input); ok {
		dataDir, newDir = d, d+".repaired"
	}
	if rep.Complete {
		rep.Next = append(rep.Next, fmt.Sprintf("every record was recovered; rebuild the member dir with the WAL: boltfix repair %s --out %s (or without it: etcdutl snapshot restore %s --data-dir %s --skip-hash-check)", dataDir, newDir, rep.Output, newDir))
		return
	}
	rep.Next = append(rep.Next,
		fmt.Sprintf("replay the WAL over the salvaged records to fill the lost ranges: boltfix repair %s --out %s", dataDir, newDir),
		"check the possibly stale keys against manifests; objects of regenerated resources come back by themselves")
	if rep.LeftOutCount+rep.PossiblyStaleCount > 0 {
		rep.Next = append(rep.Next, fmt.Sprintf("look at the objects left out or possibly stale, every version still on disk: boltfix history %s --prefix /registry/ ; as manifests: boltfix extract %s --prefix /registry/<resource>/ -o yaml", rep.Input, rep.Input))
	}
	if rep.Records.Uncertain > 0 && !rep.Aggressive {
		rep.Next = append(rep.Next, "to keep the carved records that may be compaction garbage, run again with --aggressive (they may resurrect deleted keys)")
	}
}

// DataDirOf returns the etcd data dir a db path lies in
// (DATA_DIR/member/snap/db), if it does.
func DataDirOf(db string) (string, bool) {
	snap := filepath.Dir(filepath.Clean(db))
	member := filepath.Dir(snap)
	if filepath.Base(db) != "db" || filepath.Base(snap) != "snap" || filepath.Base(member) != "member" {
		return "", false
	}
	return filepath.Dir(member), true
}
