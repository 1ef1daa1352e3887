package repair

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// ClusterStartCheck restores the db at dbPath as an n-member cluster under
// work, on loopback peer URLs picked free, starts every member, waits for a
// leader and counts the keys each member serves from its own store. It
// binds loopback addresses only: the original peers' addresses (live
// machines, perhaps) never receive a packet. The output dirs themselves
// carry the original peer URLs and cannot be started here; they are
// restored from the same db with the same restore code.
func ClusterStartCheck(dbPath string, n int, work string) ([]int, int64, error) {
	for attempt := 1; ; attempt++ {
		keys, rev, err := clusterStartCheck(dbPath, n, filepath.Join(work, strconv.Itoa(attempt)))
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return keys, rev, err
		}
	}
}

func clusterStartCheck(dbPath string, n int, work string) ([]int, int64, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, 0, err
	}
	name := func(i int) string { return "check-" + strconv.Itoa(i+1) }
	peer := func(i int) url.URL { return url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(ports[n+i])} }
	var ic []string
	for i := 0; i < n; i++ {
		u := peer(i)
		ic = append(ic, name(i)+"="+u.String())
	}
	var members []*embed.Etcd
	defer func() {
		var wg sync.WaitGroup
		for _, e := range members {
			wg.Add(1)
			// HardStop: a graceful stop would try to hand leadership to
			// peers that are stopping too, and wait seconds for it.
			go func() { defer wg.Done(); e.Server.HardStop(); e.Close() }()
		}
		wg.Wait()
	}()
	var endpoints []string
	for i := 0; i < n; i++ {
		dir := filepath.Join(work, name(i))
		u := peer(i)
		err := snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{SnapshotPath: dbPath, Name: name(i), OutputDataDir: dir,
			PeerURLs: []string{u.String()}, InitialCluster: strings.Join(ic, ","), InitialClusterToken: "boltfix-check", SkipHashCheck: true})
		if err != nil {
			return nil, 0, fmt.Errorf("restore check member %d: %w", i+1, err)
		}
		cfg := embed.NewConfig()
		cfg.Name, cfg.Dir = name(i), dir
		curl := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(ports[i])}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{curl}, []url.URL{curl}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{u}, []url.URL{u}
		cfg.InitialCluster, cfg.InitialClusterToken = strings.Join(ic, ","), "boltfix-check"
		cfg.Logger, cfg.LogLevel, cfg.LogOutputs = "zap", "panic", []string{"/dev/null"}
		cfg.UnsafeNoFsync = true
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			return nil, 0, err
		}
		members = append(members, e)
		endpoints = append(endpoints, curl.String())
	}
	for i, e := range members {
		select {
		case <-e.Server.ReadyNotify():
		case err := <-e.Err():
			return nil, 0, fmt.Errorf("check member %d stopped: %w", i+1, err)
		case <-time.After(60 * time.Second):
			return nil, 0, errors.New("the members did not elect a leader and serve within 60s")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	keys := make([]int, n)
	var rev int64
	for i, ep := range endpoints {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return nil, 0, err
		}
		// Serializable: each member answers from its own store.
		resp, err := cli.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly(), clientv3.WithSerializable())
		cli.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("check member %d: %w", i+1, err)
		}
		keys[i] = int(resp.Count)
		if i == 0 {
			rev = resp.Header.Revision
		} else if resp.Header.Revision != rev || keys[i] != keys[0] {
			return keys, rev, fmt.Errorf("check member %d serves %d keys at revision %d, member 1 %d at %d", i+1, keys[i], resp.Header.Revision, keys[0], rev)
		}
	}
	os.RemoveAll(work)
	return keys, rev, nil
}
