package salvage

import "github.com/boltfix/boltfix/pagewalk"

// GenericReport is what salvage did with a bbolt file that is not etcd's
// (Report.Layout.Kind "bbolt"): buckets are copied on bbolt's terms, with
// nothing etcd-specific. Schema in docs/json.md (boltfix.salvage/v1,
// "generic").
type GenericReport struct {
	// Proof is "synced-freelist" when the file proves which unreached pages
	// were live (their records are current and were put back in place), or
	// "none"; ProofMissing then says why.
	Proof        string `json:"proof"`
	ProofMissing string `json:"proof_missing,omitempty"`
	// Buckets are every bucket path of the output (and of the input that
	// was left out), in path order.
	Buckets []GenericBucket `json:"buckets"`
	// Lost are the key ranges that hang under damage, per bucket path.
	Lost []GenericLoss `json:"lost"`
	// Unreached counts the unreached subtrees by what became of them.
	Unreached UnreachedCounts `json:"unreached"`
	// LostFound summarises the lost+found bucket (LostFoundBucket).
	LostFound LostFoundSummary `json:"lost_found"`
	// Totals over every bucket.
	Reached    int `json:"reached"`
	Restored   int `json:"restored"`
	Written    int `json:"written"`
	LeftOut    int `json:"left_out"`
	OpenRanges int `json:"open_ranges"`
}

// GenericBucket counts one bucket path's records.
type GenericBucket struct {
	Path    []string `json:"path"`
	PathHex []string `json:"path_hex"`
	// Reached: from the walked tree. Restored: from orphaned pages the
	// freelist proves current, put back in place. LostFound: records whose
	// guessed bucket is this one, written to lost+found instead. LeftOut:
	// records bbolt refused (damaged shapes).
	Reached   int  `json:"reached"`
	Restored  int  `json:"restored"`
	LostFound int  `json:"lost_found"`
	LeftOut   int  `json:"left_out"`
	Damaged   bool `json:"damaged"`
	// OpenRanges counts this bucket's lost key ranges not proven recovered.
	OpenRanges int `json:"open_ranges"`
}

// GenericLoss is one key range under damage in one bucket.
type GenericLoss struct {
	Bucket  []string      `json:"bucket"`
	Kind    pagewalk.Kind `json:"kind"`
	Page    *uint64       `json:"page"`
	Element *int          `json:"element"`
	// After and Before bound the range (exclusive; null = open): the last
	// surviving key before the damage and the first after it.
	After  *pagewalk.Key `json:"after"`
	Before *pagewalk.Key `json:"before"`
	// Restored counts the records put back inside the range.
	Restored int `json:"restored"`
	// Recovered is true when the file proves nothing under the range is
	// missing: a synced freelist, every page of the last tree accounted
	// for, and the damage in pointers only (a branch page), not in
	// records. Why says what keeps it open.
	Recovered bool   `json:"recovered"`
	Why       string `json:"why"`
}

// UnreachedCounts counts the subtrees of unreached well-formed pages.
type UnreachedCounts struct {
	// Orphaned subtrees: cut off from the last tree (proven current).
	Orphaned int `json:"orphaned"`
	// Placed: of Orphaned, put back under the damaged element.
	Placed int `json:"placed"`
	// ToLostFound: subtrees whose records went to lost+found.
	ToLostFound int `json:"to_lost_found"`
	// Stale: subtrees on free pages (older versions) or unproven pages
	// outside every lost range: the output holds their key ranges whole.
	Stale        int `json:"stale"`
	StaleRecords int `json:"stale_records"`
	// Unaccounted pages below the high-water mark: neither reached, free,
	// nor part of a placed orphan subtree (garbage, or a missing tail).
	UnaccountedPages int `json:"unaccounted_pages"`
}

// LostFoundSummary counts what went to lost+found.
type LostFoundSummary struct {
	Bucket  string         `json:"bucket"` // LostFoundBucket when used, else ""
	Records int            `json:"records"`
	Pages   int            `json:"pages"`
	Status  map[string]int `json:"by_status"` // orphan, free, unproven, past-hwm
	// Duplicates are records identical to one in the output at their
	// guessed path: not written again.
	Duplicates int `json:"duplicates"`
}
