package repair

import (
	"github.com/boltfix/boltfix/memberdir"
	"github.com/boltfix/boltfix/membership"
	"github.com/boltfix/boltfix/salvage"
	"github.com/boltfix/boltfix/wal"
)

// ReportSchema names the JSON schema of Report.
const ReportSchema = "boltfix.repair/v1"

// Report is what repair did. Its JSON form is `boltfix repair --json`.
type Report struct {
	Schema string `json:"schema"`
	Input  string `json:"input"`
	Output string `json:"output"`
	// Complete is true when nothing was lost: every revision is accounted
	// for by the db or the WAL.
	Complete bool `json:"complete"`
	// LostRevisions are inclusive [from, to] main-revision ranges that may
	// hold records neither the db nor the WAL could give back; to = 0 means
	// the end cannot be known (e.g. no db survives).
	LostRevisions [][2]int64 `json:"lost_revisions"`
	LostReasons   []string   `json:"lost_reasons"`
	// Unproven says why the repair is not complete beyond the lost
	// ranges: what could not be proven (the audit failed or nothing could
	// vouch for the db; records left out whose revision is unknown).
	Unproven []string `json:"unproven"`
	// Strategy is the plan's (see Plan), Why its evidence, and Steps what
	// each step of the plan did, in order: exactly the plan's steps, a
	// conditional one whose condition did not hold with Ran false.
	Strategy Strategy     `json:"strategy"`
	Why      []string     `json:"strategy_why"`
	Steps    []StepResult `json:"steps"`
	// Audit is the check of the db's claims against the WAL; nil when the
	// whole history was replayed from index 1, or there is no db or WAL.
	Audit *Audit `json:"audit"`
	// Counts of key-bucket records in the new db by source.
	Counts Counts `json:"counts"`
	// Disagreements are revisions whose record from the db differs from
	// what replaying the WAL produced.
	Disagreements []string `json:"disagreements"`
	// Version is the etcd version the data was written by, as far as the
	// db tells ("3.6+" from storageVersion, else "3.5 or older").
	Version              string `json:"version"`
	StorageVersion       string `json:"storage_version"`        // in the damaged db's meta bucket
	ClusterVersion       string `json:"cluster_version"`        // in the damaged db's cluster bucket
	OutputStorageVersion string `json:"output_storage_version"` // in the new db
	// Alarms raised in the damaged db (NOSPACE, CORRUPT): they carry over
	// and change how etcd behaves.
	Alarms []string `json:"alarms"`

	// Membership is the cluster the data dir belongs to. Refused is set
	// when repair wrote nothing because the dir is one member of a cluster
	// with other voting members; ForceNewCluster when it wrote a new
	// one-member cluster anyway (Warnings says why that is dangerous).
	Membership      *membership.Membership `json:"membership"`
	Refused         *Refusal               `json:"refused,omitempty"`
	ForceNewCluster bool                   `json:"force_new_cluster"`
	Warnings        []string               `json:"warnings"`

	DB            *DBPart           `json:"db"`
	WAL           *WALPart          `json:"wal"`
	Replay        *wal.ReplayResult `json:"replay"`
	Member        *memberdir.Result `json:"member"`
	Checks        Checks            `json:"checks"`
	RevisionBump  uint64            `json:"revision_bump"`
	MarkCompacted bool              `json:"mark_compacted"`
	BumpReason    string            `json:"bump_reason,omitempty"`

	PossiblyStale      []salvage.StaleKey       `json:"possibly_stale"`
	PossiblyStaleCount int                      `json:"possibly_stale_count"`
	Ledger             []salvage.ResourceLedger `json:"kubernetes"`
	Notes              []string                 `json:"notes"`
	Next               []string                 `json:"next"`
}

// Counts counts key-bucket records in the new db by where they came from.
type Counts struct {
	Reached  int `json:"reached"`  // reached in the damaged db's tree
	Carved   int `json:"carved"`   // carved from unreached pages and kept
	Replayed int `json:"replayed"` // produced by replaying the WAL
	Final    int `json:"final"`    // in the new db
	// Regenerated counts carved records the replay produced again,
	// byte-identical (cross-checked).
	Regenerated int `json:"regenerated"`
}

// DBPart summarises the damaged db.
type DBPart struct {
	Present  bool            `json:"present"`
	Findings int             `json:"scan_findings"`
	Salvage  *salvage.Report `json:"salvage,omitempty"`
	// BaseRevision is the revision the replay started from, and
	// BaseIndex its consistent_index.
	BaseRevision int64  `json:"base_revision"`
	BaseIndex    uint64 `json:"base_index"`
	Strategy     string `json:"strategy"`
}

// WALPart summarises the WAL.
type WALPart struct {
	Present    bool        `json:"present"`
	Clean      bool        `json:"clean"`
	FirstIndex uint64      `json:"first_index"`
	LastIndex  uint64      `json:"last_index"`
	Commit     uint64      `json:"commit"`
	Stops      []*wal.Stop `json:"stops"`
	Missing    []wal.Gap   `json:"missing"` // entries the db needs that the WAL lacks
	Snapshots  int         `json:"snapshots"`
}

// Checks are the checks repair ran on its own output.
//
// BboltCheck is always true in a returned report (a new db that fails
// bbolt's check is a bug: Run returns an error and publishes nothing), so
// tests check the published db itself, not this flag.
type Checks struct {
	BboltCheck       bool   `json:"bbolt_check"`
	IndexWithinWAL   bool   `json:"consistent_index_within_wal"`
	EtcdStarted      bool   `json:"etcd_started"`
	EtcdKeys         int    `json:"etcd_keys"`
	EtcdRevision     int64  `json:"etcd_revision"`
	EtcdError        string `json:"etcd_error,omitempty"`
	EtcdCheckSkipped bool   `json:"etcd_check_skipped"`
}
