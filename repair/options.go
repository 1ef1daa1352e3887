package repair

import (
	"context"
	"fmt"
	"strings"

	"github.com/boltfix/boltfix/pagewalk"
	"github.com/boltfix/boltfix/wal"
	"go.uber.org/zap"
)

// Options configure a repair. The membership flags are etcdutl snapshot
// restore's; by default the new dir is a drop-in for the original: same
// member name and peer URLs, single-member cluster.
type Options struct {
	Out        string
	Force      bool
	Aggressive bool
	// PageSize is the new db's page size in bytes; 0 lets salvage choose
	// (salvage.OutputPageSize).
	PageSize int
	// WALDir is etcd's --wal-dir when the WAL is not under the data dir.
	WALDir string

	Name                     string
	InitialCluster           string // name=peerURL[,name=peerURL]; only this member's entry is used
	InitialAdvertisePeerURLs []string
	InitialClusterToken      string
	// ForceNewCluster (etcd's flag name) writes a new one-member cluster
	// even when the data dir is one member of a cluster with other voting
	// members; without it such a repair is refused (Report.Refused) before
	// any heavy work.
	ForceNewCluster bool
	// BumpRevision and MarkCompacted: nil means decide (bump and mark when
	// revisions may have gone backwards).
	BumpRevision  *uint64
	MarkCompacted *bool

	// StartCheck starts etcd on a copy of the output and counts its keys.
	// nil uses the in-process check (StartCheck); the CLI runs it in a
	// child process so a crash of etcd cannot take the report with it.
	StartCheck func(dataDir string) (keys int, rev int64, err error)
	// ClusterStartCheck is StartCheck for RunCluster: restore the db as an
	// n-member cluster under work on loopback and count every member's
	// keys. nil uses the in-process ClusterStartCheck.
	ClusterStartCheck func(db string, n int, work string) (keys []int, rev int64, err error)
	// SkipStartCheck skips the etcd start (the report says so).
	SkipStartCheck bool

	// Progress is told about pages read; when it also has a
	// Phase(name, total) method (salvage.Phaser) it is told each phase.
	Progress pagewalk.Counter
	Logger   *zap.Logger
	// Context, if set, stops the repair when it is cancelled: checked
	// between phases and inside the scan, carving, record copy and WAL
	// replay loops. The temp dir is removed, nothing is published, and Run
	// returns a *salvage.InterruptedError (errors.Is context.Canceled).
	Context context.Context

	// log, when set, replaces the data dir's own WAL: RunCluster repairs
	// each member's db with the union of every member's WAL.
	log *wal.Log
}

// peerURLs resolves the member's name and peer URLs from the flags.
func (o *Options) member() (string, []string, error) {
	name, urls := o.Name, o.InitialAdvertisePeerURLs
	if o.InitialCluster == "" {
		return name, urls, nil
	}
	var mine []string
	for _, part := range strings.Split(o.InitialCluster, ",") {
		n, u, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return "", nil, fmt.Errorf("--initial-cluster: %q is not name=url", part)
		}
		if name == "" {
			name = n
		}
		if n == name {
			mine = append(mine, u)
		}
	}
	if len(urls) == 0 {
		urls = mine
	}
	return name, urls, nil
}

// defaultBump is the revision bump applied when revisions may have gone
// backwards: larger than the revisions any lost range could have held in a
// real cluster, as etcdutl's documentation advises.
const defaultBump = 1_000_000
