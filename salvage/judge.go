package salvage

import (
	"fmt"

	"github.com/boltfix/boltfix/kube"
	"path/filepath"
	"sort"
	"strings"
)

// judgeKeys lists the keys whose newest surviving record is older than
// some lost range (stale, or deleted in the lost range), and builds the
// Kubernetes ledger.
func judgeKeys(ks *keySpace, rep *Report, opts Options) {
	ledger := map[string]*ResourceLedger{}
	for _, k := range ks.keys.names() {
		s := ks.keys.getName(k)
		res := resourceOf(k)
		var l *ResourceLedger
		if res != "" {
			if l = ledger[res]; l == nil {
				regen, note := regenerated(res)
				l = &ResourceLedger{Resource: res, Regenerated: regen, Note: note}
				ledger[res] = l
			}
		}
		if !s.written {
			// Seen on disk, nothing written: a key the output lacks
			// because its records were left out (no evidence either way),
			// or were all proven compacted (a deleted key).
			if s.uncertain {
				rep.LeftOutCount++
				if l != nil {
					l.LeftOut++
				}
				if len(rep.LeftOut) < opts.MaxListed {
					rep.LeftOut = append(rep.LeftOut, LeftOutKey{Key: k, Revision: s.latest.Main, Object: ks.keys.object(s),
						Reason: "its only records on disk were left out: no evidence whether compaction kept them (see uncertain; --aggressive keeps them)"})
				}
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
			if len(rep.PossiblyStale) < opts.MaxListed {
				rep.PossiblyStale = append(rep.PossiblyStale, StaleKey{Key: k, Revision: latest.Main, Deleted: latest.Tombstone, LostFrom: s.latest.Main, LostTo: s.latest.Main, Object: objectOfKey(k)})
			}
			continue
		}
		for _, r := range rep.LostRevisions {
			if r[1] != 0 && r[1] <= latest.Main {
				continue
			}
			rep.PossiblyStaleCount++
			if l != nil && !latest.Tombstone {
				l.PossiblyStale++
			}
			if len(rep.PossiblyStale) < opts.MaxListed {
				sk := StaleKey{Key: k, Revision: latest.Main, Deleted: latest.Tombstone, LostFrom: r[0], LostTo: r[1], Object: objectOfKey(k)}
				if l != nil && l.Regenerated {
					sk.Recoverable = l.Note
				}
				rep.PossiblyStale = append(rep.PossiblyStale, sk)
			}
			break
		}
	}
	for _, l := range ledger {
		l.Recovered = l.Live - l.PossiblyStale
		l.Lost = l.LeftOut
		rep.Ledger = append(rep.Ledger, *l)
	}
	sort.Slice(rep.Ledger, func(i, j int) bool { return rep.Ledger[i].Resource < rep.Ledger[j].Resource })
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
