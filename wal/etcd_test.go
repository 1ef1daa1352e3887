package wal

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// liveEtcd is a real etcd server in a temp dir, for ground truth.
type liveEtcd struct {
	t       *testing.T
	dataDir string
	e       *embed.Etcd
	cli     *clientv3.Client
}

func freeURL(t testing.TB) url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	u, _ := url.Parse("http://" + l.Addr().String())
	return *u
}

// startEtcd starts an embedded etcd on loopback ports. tweak may adjust the
// config (snapshot count, segment count...).
func startEtcd(t *testing.T, dataDir string, tweak func(*embed.Config)) *liveEtcd {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = "boltfix-test"
	cfg.Dir = dataDir
	cfg.UnsafeNoFsync = true
	cfg.LogLevel = "error"
	// Shutdown always logs "server closed" at error level: keep it out of test output.
	cfg.LogOutputs = []string{filepath.Join(t.TempDir(), "etcd.log")}
	cu, pu := freeURL(t), freeURL(t)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	if tweak != nil {
		tweak(cfg)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		t.Fatal("etcd did not become ready")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{cu.String()}, DialTimeout: 5 * time.Second})
	if err != nil {
		e.Close()
		t.Fatal(err)
	}
	le := &liveEtcd{t: t, dataDir: dataDir, e: e, cli: cli}
	t.Cleanup(le.stop)
	return le
}

func (le *liveEtcd) stop() {
	if le.cli != nil {
		le.cli.Close()
		le.cli = nil
	}
	if le.e != nil {
		le.e.Close()
		le.e = nil
	}
}

// snapshot saves the server's db through the maintenance API.
func (le *liveEtcd) snapshot(path string) {
	le.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rc, err := le.cli.Snapshot(ctx)
	if err != nil {
		le.t.Fatal(err)
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		le.t.Fatal(err)
	}
	defer f.Close()
	n, err := f.ReadFrom(rc)
	if err != nil {
		le.t.Fatal(err)
	}
	// The stream ends with a sha256 of the db (etcdutl's hasChecksum).
	if n%512 == sha256.Size {
		if err := f.Truncate(n - sha256.Size); err != nil {
			le.t.Fatal(err)
		}
	}
}

// consistentIndex reads a db's consistent_index.
func consistentIndex(t testing.TB, path string) uint64 {
	t.Helper()
	ci, _ := readConsistentIndex(path, 0, 0)
	return ci
}

// latestKVs reads a db's key bucket and returns the live key-values: the
// newest record of every key, unless it is a tombstone.
func latestKVs(t testing.TB, path string) map[string]*mvccpb.KeyValue {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type rec struct {
		kv   *mvccpb.KeyValue
		tomb bool
	}
	latest := map[string]rec{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("key")).ForEach(func(k, v []byte) error {
			kv := &mvccpb.KeyValue{}
			if err := proto.Unmarshal(v, kv); err != nil {
				return err
			}
			// Keys are revision-ordered, so the last record wins.
			latest[string(kv.Key)] = rec{kv: kv, tomb: len(k) == 18 && k[17] == 't'}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*mvccpb.KeyValue{}
	for k, r := range latest {
		if !r.tomb {
			out[k] = r.kv
		}
	}
	return out
}

// diffKVs compares two key sets field by field.
func diffKVs(t testing.TB, want, got map[string]*mvccpb.KeyValue) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%q missing", k)
			continue
		}
		if string(g.Value) != string(w.Value) || g.CreateRevision != w.CreateRevision || g.ModRevision != w.ModRevision || g.Version != w.Version || g.Lease != w.Lease {
			t.Errorf("%q: got %v want %v", k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%q resurrected or extra", k)
		}
	}
}

// all reads every key with its revisions.
func (le *liveEtcd) all() map[string]*mvccpb.KeyValue {
	le.t.Helper()
	resp, err := le.cli.Get(context.Background(), "\x00", clientv3.WithFromKey())
	if err != nil {
		le.t.Fatal(err)
	}
	out := map[string]*mvccpb.KeyValue{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = kv
	}
	return out
}

// workload writes what the tests check: puts, updates, deletes, a txn, a
// lease granted, attached and revoked, another lease left attached, and a
// compaction. n scales the number of keys.
func (le *liveEtcd) workload(n int) {
	le.t.Helper()
	ctx := context.Background()
	cli := le.cli
	must := func(err error) {
		le.t.Helper()
		if err != nil {
			le.t.Fatal(err)
		}
	}
	for i := 0; i < n; i++ {
		_, err := cli.Put(ctx, fmt.Sprintf("/registry/pods/default/pod-%04d", i), fmt.Sprintf("k8s\x00pod %d v1", i))
		must(err)
	}
	for i := 0; i < n; i += 3 {
		_, err := cli.Put(ctx, fmt.Sprintf("/registry/pods/default/pod-%04d", i), fmt.Sprintf("k8s\x00pod %d v2", i))
		must(err)
	}
	for i := 1; i < n; i += 5 {
		_, err := cli.Delete(ctx, fmt.Sprintf("/registry/pods/default/pod-%04d", i))
		must(err)
	}
	_, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Version("/registry/pods/default/pod-0000"), ">", 0)).
		Then(clientv3.OpPut("/registry/configmaps/kube-system/txn", "k8s\x00from txn"),
			clientv3.OpDelete("/registry/pods/default/pod-0002")).
		Else(clientv3.OpPut("/registry/configmaps/kube-system/else", "never")).Commit()
	must(err)
	lg, err := cli.Grant(ctx, 600)
	must(err)
	_, err = cli.Put(ctx, "/registry/leases/kube-node-lease/node-a", "k8s\x00lease a", clientv3.WithLease(lg.ID))
	must(err)
	_, err = cli.Revoke(ctx, lg.ID)
	must(err)
	lg2, err := cli.Grant(ctx, 3600)
	must(err)
	_, err = cli.Put(ctx, "/registry/leases/kube-node-lease/node-b", "k8s\x00lease b", clientv3.WithLease(lg2.ID))
	must(err)
	resp, err := cli.Get(ctx, "/registry/pods/default/pod-0000")
	must(err)
	_, err = cli.Compact(ctx, resp.Header.Revision-3)
	must(err)
	for i := 0; i < n/4; i++ {
		_, err := cli.Put(ctx, fmt.Sprintf("/registry/events/default/ev-%04d", i), fmt.Sprintf("k8s\x00event %d", i))
		must(err)
	}
	_, err = cli.Delete(ctx, "/registry/events/", clientv3.WithPrefix(), clientv3.WithRange("/registry/events/default/ev-0003"))
	must(err)
}

// walFiles lists the data dir's WAL segments.
func walFiles(t testing.TB, dataDir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dataDir, "member", "wal", "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
