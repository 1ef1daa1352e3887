package salvage

import "github.com/boltfix/boltfix/pagewalk"

// ReportSchema names the JSON schema of Report.
const ReportSchema = "boltfix.salvage/v1"

// Report is what salvage did. Its JSON form is `boltfix salvage --json`.
type Report struct {
	Schema     string `json:"schema"`
	Input      string `json:"input"`
	Output     string `json:"output"`
	Aggressive bool   `json:"aggressive"`
	// Layout says what the file is (etcd's, or another bbolt file and
	// which application's). For a file that is not etcd's, Generic holds
	// the report and the etcd fields stay empty.
	Layout  *pagewalk.Layout `json:"layout"`
	Generic *GenericReport   `json:"generic,omitempty"`
	// Source says which tree the mutable buckets came from.
	Source string `json:"source"`
	// TreeDistrusted, when set, says why the walked key bucket was not
	// taken as the last state of the data: every record was carved and
	// decided by evidence instead.
	TreeDistrusted string `json:"tree_distrusted,omitempty"`
	// Findings is the number of scan findings; ScanClean is true when the
	// input had none.
	Findings  int  `json:"scan_findings"`
	ScanClean bool `json:"scan_clean"`

	Buckets []BucketCount `json:"buckets"`
	// Key-bucket records.
	Records RecordCounts `json:"records"`

	ConsistentIndex *uint64 `json:"consistent_index"`
	Term            *uint64 `json:"term"`
	// CompactRevision is the finished compaction (main revision) used to
	// judge carved records; CompactSource says where it came from.
	CompactRevision int64  `json:"compact_revision"`
	CompactSource   string `json:"compact_source"`
	FirstRevision   int64  `json:"first_revision"`
	LastRevision    int64  `json:"last_revision"`

	// LostRevisions are inclusive [from, to] ranges of main revisions that
	// may hold records salvage could not recover; to = 0 means open-ended.
	LostRevisions [][2]int64 `json:"lost_revisions"`
	// LostReasons explains each range, index for index.
	LostReasons []string `json:"lost_reasons"`
	// PossiblyStale are keys whose newest surviving record is older than a
	// lost range: their value may be stale, or they may have been deleted.
	PossiblyStale      []StaleKey `json:"possibly_stale"`
	PossiblyStaleCount int        `json:"possibly_stale_count"`
	// Uncertain are carved records that may be compaction garbage: left out
	// (conservative) or kept and flagged (--aggressive).
	Uncertain []UncertainRecord `json:"uncertain"`
	// Unverified are written records whose value nothing vouches for (no
	// identical copy elsewhere) while the scan shows damage that can change
	// values without a trace (UnverifiedReason); empty otherwise.
	Unverified       []UnverifiedRecord `json:"unverified"`
	UnverifiedCount  int                `json:"unverified_count"`
	UnverifiedReason string             `json:"unverified_reason,omitempty"`
	// zeroed are the key-bucket records a zeroed-block finding names;
	// zeroedUnverified (zeroedCount in all) those of them written with no
	// second witness. unframedUnverified (unframedCount) are the written
	// records with no second witness whose Kubernetes value is not framed
	// as kube-apiserver writes it (kube.FrameIntact), of framesBroken among
	// the framesChecked values judged. Both are unverified even where no
	// other damage can have changed values (witness.go).
	zeroed             map[pagewalk.Revision]bool
	zeroedUnverified   []UnverifiedRecord
	zeroedCount        int
	unframedUnverified []UnverifiedRecord
	unframedCount      int
	framesChecked      int
	framesBroken       int
	// LeftOut names the keys seen on disk of which nothing was written
	// (every record left out for want of evidence); LeftOutCount counts
	// them all.
	LeftOut      []LeftOutKey `json:"left_out"`
	LeftOutCount int          `json:"left_out_count"`
	// Evidence counts, per kind of proof, the carved records below the
	// compaction point that salvage decided.
	Evidence  EvidenceCounts   `json:"evidence"`
	Conflicts []Conflict       `json:"conflicts"`
	Ledger    []ResourceLedger `json:"kubernetes"`

	// Verified is true when the written file opened in bbolt and passed
	// tx.Check. A file that fails is never published (Run returns an
	// error instead), so in a returned report it is always true: tests
	// check the output file itself, not this flag.
	Verified bool `json:"verified"`
	// PageSize is the new file's page size in bytes (OutputPageSize).
	PageSize int `json:"page_size"`
	// Complete is true when nothing was lost or left out.
	Complete bool     `json:"complete"`
	Notes    []string `json:"notes"`
	Next     []string `json:"next"`
}

// BucketCount counts one bucket's records by where they came from.
type BucketCount struct {
	Bucket  []string `json:"bucket"`
	Reached int      `json:"reached"`
	Carved  int      `json:"carved"`
	LeftOut int      `json:"left_out"`
	Written int      `json:"written"`
	Damaged bool     `json:"damaged"` // the tree under it was damaged: records may be missing
	Missing bool     `json:"missing"` // not reached at all; created empty
}

// RecordCounts counts etcd key-bucket records.
type RecordCounts struct {
	Reached        int `json:"reached"`
	Carved         int `json:"carved"`          // carved and not already reached
	Duplicates     int `json:"duplicates"`      // carved copies identical to a record already had
	Compacted      int `json:"compacted"`       // carved, superseded below the compaction point: dropped
	Uncertain      int `json:"uncertain"`       // carved, possibly compaction garbage
	Written        int `json:"written"`         // in the new db
	Rejected       int `json:"rejected"`        // revision-shaped records whose value failed validation
	Inconsistent   int `json:"inconsistent"`    // reached records that decode but disagree with their revision key (left out)
	CarvedPages    int `json:"carved_pages"`    // pages that gave at least one record
	CandidatePages int `json:"candidate_pages"` // unreached leaf pages examined
}

// StaleKey is a key whose newest surviving record predates a lost range.
type StaleKey struct {
	Key         string `json:"key"`
	Revision    int64  `json:"revision"` // main revision of its newest surviving record
	Deleted     bool   `json:"deleted"`  // that record is a tombstone
	LostFrom    int64  `json:"lost_from"`
	LostTo      int64  `json:"lost_to"`
	Recoverable string `json:"recoverable,omitempty"` // for Kubernetes keys: who regenerates it
	Object      string `json:"object,omitempty"`      // for Kubernetes keys: resource namespace/name
}

// UncertainRecord is a carved record that may be compaction garbage.
type UncertainRecord struct {
	Revision pagewalk.Revision `json:"revision"`
	Key      string            `json:"key"`
	Page     uint64            `json:"page"`
	Kept     bool              `json:"kept"`
	Reason   string            `json:"reason"`
}

// Conflict is a revision found with different bytes in two places.
type Conflict struct {
	Revision  pagewalk.Revision `json:"revision"`
	Pages     []uint64          `json:"pages"`
	KeptPage  uint64            `json:"kept_page"`
	KeptFrom  string            `json:"kept_from"` // "reached" or "carved"
	Different string            `json:"different"`
}

// ResourceLedger is the Kubernetes view of one resource type.
type ResourceLedger struct {
	Resource      string `json:"resource"`
	Live          int    `json:"live"`           // keys whose newest record is a put
	Recovered     int    `json:"recovered"`      // of Live: newest record after every lost range (current)
	PossiblyStale int    `json:"possibly_stale"` // of Live: newest record predates a lost range
	Deleted       int    `json:"deleted"`        // keys whose newest record is a tombstone
	LeftOut       int    `json:"left_out"`       // keys seen on disk whose records were all left out: etcd will not serve them
	// Lost counts keys salvage knows existed but cannot give back (known
	// only from left-out records). Keys whose every record was on a lost
	// page are unknowable: the lost revision ranges stand for them.
	Lost        int    `json:"lost"`
	Regenerated bool   `json:"regenerated"` // controllers recreate these objects
	Note        string `json:"note"`
}

// LeftOutKey is a key seen on disk that the output does not hold.
type LeftOutKey struct {
	Key      string `json:"key"`
	Revision int64  `json:"revision"` // main revision of its newest record seen
	// Object names the Kubernetes object its value holds ("ConfigMap
	// ns/name"), when it decodes.
	Object string `json:"object,omitempty"`
	Reason string `json:"reason"`
}

// EvidenceCounts counts the carved records below the compaction point by the
// evidence that decided them (docs/recovery.md §3, "Evidence about a carved record").
type EvidenceCounts struct {
	// Compacted: proven deleted by compaction.
	SupersededNewer int `json:"superseded_by_newer_record"` // a newer record of the key at or below the compaction
	Tombstone       int `json:"tombstone_below_compaction"` // the record is itself a tombstone below the compaction
	SpannedLacking  int `json:"spanned_by_leaf_lacking_it"` // a valid leaf written later spans its revision and lacks it
	LeaseGone       int `json:"lease_revoked"`              // its lease is gone, so its key was deleted
	NotInLiveTiling int `json:"outside_live_tiling"`        // the live leaves under the damage are known, and it is on none
	// Live: proven kept by compaction.
	NewerAboveCompaction int `json:"newer_record_above_compaction"` // its key has a record above the compaction: it is the one kept below
	LiveTiling           int `json:"on_live_leaf"`                  // it lies on a leaf proven live (the tiling of the damaged range)
	// Unknown: no evidence either way (left out, or kept with --aggressive).
	NoEvidence int `json:"no_evidence"`
}
