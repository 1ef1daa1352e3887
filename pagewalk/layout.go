package pagewalk

import (
	"slices"
	"strings"
)

// Layout says what a bbolt file is, from its reached top-level buckets:
// etcd's (EtcdBuckets) or a generic bbolt file, with the application named
// when its bucket layout is well known. The names cost nothing to check and
// decide nothing: a generic file is salvaged on bbolt's terms whatever
// application wrote it.
type Layout struct {
	// Kind is "etcd" or "bbolt" (any other bbolt file).
	Kind string `json:"kind"`
	// Application names a known layout: "containerd-metadata",
	// "raft-boltdb", "vault-fsm", "portainer", "influxdb2"; "" unknown.
	Application string `json:"application,omitempty"`
	// Description is the layout for people.
	Description string `json:"description"`
	// TopLevel are the reached top-level bucket names, sorted.
	TopLevel []string `json:"top_level_buckets"`
}

// Layout kinds.
const (
	KindEtcdFile  = "etcd"
	KindBboltFile = "bbolt"
)

// knownLayout is a well-known application's top-level buckets: all of
// need must be present (and any of any, when set).
type knownLayout struct {
	app, desc string
	need, any []string
}

// knownLayouts are checked in order; the first that matches names the file.
var knownLayouts = []knownLayout{
	{app: "containerd-metadata", desc: "containerd metadata store (meta.db: v1/<namespace>/{images,containers,content,leases,snapshots,sandboxes})", need: []string{"v1"}},
	{app: "raft-boltdb", desc: "HashiCorp raft-boltdb log store (raft.db: logs, conf; Consul, Nomad, Vault)", need: []string{"logs", "conf"}},
	{app: "vault-fsm", desc: "HashiCorp Vault integrated storage (vault.db: data, config)", need: []string{"data", "config"}},
	{app: "portainer", desc: "Portainer database (portainer.db)", need: []string{"endpoints", "settings"}, any: []string{"users", "version", "stacks"}},
	{app: "influxdb2", desc: "InfluxDB 2 metadata (influxd.bolt)", need: []string{"organizationsv1"}, any: []string{"bucketsv1", "authorizationsv1"}},
}

// identify names the file from its reached top-level buckets. An etcd file
// holds etcd's key and meta buckets; a file whose every reached top-level
// bucket is one of etcd's is a damaged etcd file.
func (r *Result) identify() *Layout {
	l := &Layout{TopLevel: []string{}}
	for _, b := range r.Buckets {
		if len(b.Path) == 1 {
			l.TopLevel = append(l.TopLevel, string(b.Path[0]))
		}
	}
	slices.Sort(l.TopLevel)
	etcdOnly := len(l.TopLevel) > 0
	for _, n := range l.TopLevel {
		etcdOnly = etcdOnly && slices.Contains(EtcdBuckets, n)
	}
	if (r.Report.Etcd != nil && r.Report.Etcd.IsEtcd) || etcdOnly {
		l.Kind, l.Application, l.Description = KindEtcdFile, "etcd", "etcd backend (member/snap/db)"
		return l
	}
	l.Kind = KindBboltFile
	l.Description = "bbolt file of an unknown application"
	if len(l.TopLevel) == 0 {
		l.Description = "bbolt file: no top-level bucket was reached"
	}
	for _, k := range knownLayouts {
		ok := true
		for _, n := range k.need {
			ok = ok && slices.Contains(l.TopLevel, n)
		}
		if ok && len(k.any) > 0 {
			ok = slices.ContainsFunc(k.any, func(n string) bool { return slices.Contains(l.TopLevel, n) })
		}
		if ok {
			l.Application, l.Description = k.app, k.desc
			break
		}
	}
	return l
}

// IsEtcd reports whether the layout is etcd's.
func (l *Layout) IsEtcd() bool { return l != nil && l.Kind == KindEtcdFile }

// String is the description with the top-level buckets.
func (l *Layout) String() string {
	return l.Description + " [" + strings.Join(l.TopLevel, ", ") + "]"
}
