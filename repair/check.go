package repair

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/boltfix/boltfix/wal"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// StartCheck starts an embedded etcd on dataDir (a copy: etcd writes to
// it) on loopback ports, counts every key it serves and stops it. It fails
// if etcd is not serving within 60 seconds: etcd that starts but never
// serves is the failure mode of a consistent_index above the WAL's commit.
func StartCheck(dataDir string) (int, int64, error) {
	// Ports are picked free and then bound by etcd: another process can take
	// one in between, so a bind failure is retried on new ports.
	for attempt := 1; ; attempt++ {
		keys, rev, err := startCheck(dataDir)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			return keys, rev, err
		}
	}
}

func startCheck(dataDir string) (int, int64, error) {
	// etcd runs in this process and rebuilds its index of every key.
	defer wal.RelaxMemoryLimit()()
	ports, err := freePorts(2)
	if err != nil {
		return 0, 0, err
	}
	cfg := embed.NewConfig()
	cfg.Dir = dataDir
	cfg.Name = memberName(dataDir)
	curl := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(ports[0])}
	purl := url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(ports[1])}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{curl}, []url.URL{curl}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{purl}, []url.URL{purl}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.Logger, cfg.LogLevel, cfg.LogOutputs = "zap", "panic", []string{"/dev/null"}
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return 0, 0, err
	}
	defer e.Close()
	timeout := readyTimeout(dataDir)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		return 0, 0, fmt.Errorf("etcd stopped: %w", err)
	case <-time.After(timeout):
		return 0, 0, fmt.Errorf("etcd did not become ready within %s (consistent_index above the WAL commit?)", timeout)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{curl.String()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return 0, 0, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if err != nil {
		return 0, 0, err
	}
	return int(resp.Count), resp.Header.Revision, nil
}

// memberName is the name the check passes to etcd; with an existing WAL
// etcd takes its identity from the WAL, so any name works.
// readyTimeout is how long the start check waits for etcd to serve: a
// minute, plus what etcd needs to rebuild its index from every record of a
// big db (about 15 s per GiB on a 5 GiB db here, the copy included; 30 s per GiB
// leaves room for a slower node). A fixed minute failed a healthy 5 GiB
// repair on a loaded machine.
func readyTimeout(dataDir string) time.Duration {
	d := 60 * time.Second
	if st, err := os.Stat(filepath.Join(dataDir, "member", "snap", "db")); err == nil {
		d += time.Duration(st.Size()>>20) * 30 * time.Second / 1024
	}
	return d
}

func memberName(string) string { return "boltfix-check" }

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
