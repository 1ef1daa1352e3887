package pagewalk

import "encoding/hex"

// ReportSchema names the JSON schema of Report. It changes only when a
// field changes meaning or goes away; new fields may appear.
const ReportSchema = "boltfix.scan/v1"

// Report is what a scan found. Its JSON form is the `--json` output of
// `boltfix scan`.
type Report struct {
	Schema         string `json:"schema"`
	Path           string `json:"path"`
	Size           int64  `json:"size"`
	PageSize       int    `json:"page_size"`
	PageSizeSource string `json:"page_size_source"`
	Pages          uint64 `json:"pages"` // page slots in the file, a partial last page included
	Deep           bool   `json:"deep"`

	Metas []MetaInfo `json:"metas"`
	// Chosen is the meta page walked (0 or 1), or -1 when neither is usable.
	Chosen         int             `json:"chosen_meta"`
	ChosenReason   string          `json:"chosen_reason"`
	RootCandidates []RootCandidate `json:"root_candidates,omitempty"`

	Census  Census         `json:"census"`
	Buckets []BucketReport `json:"buckets"`
	Etcd    *EtcdSummary   `json:"etcd"`
	// Layout says whether the file is etcd's or another bbolt file, and
	// names a well-known application's layout.
	Layout   *Layout   `json:"layout"`
	Findings []Finding `json:"findings"`
	Notes    []string  `json:"notes,omitempty"`
	// Clean is true when there are no findings.
	Clean bool `json:"clean"`
}

// Census counts every page slot of the file by what it is.
type Census struct {
	Meta         uint64 `json:"meta"`
	Freelist     uint64 `json:"freelist"`
	Branch       uint64 `json:"branch"`   // reached branch pages
	Leaf         uint64 `json:"leaf"`     // reached leaf pages
	Overflow     uint64 `json:"overflow"` // continuation pages of reached nodes
	Free         uint64 `json:"free"`     // below the high-water mark, not reached, free
	FreeStale    uint64 `json:"free_stale"`
	Orphan       uint64 `json:"orphan"`     // well-formed, not reached, not free (synced freelist only)
	Unreadable   uint64 `json:"unreadable"` // neither reached, free nor well-formed (synced freelist only)
	PastHWM      uint64 `json:"past_hwm"`   // at or past the high-water mark
	PastHWMStale uint64 `json:"past_hwm_stale"`
	Missing      uint64 `json:"missing"` // below the high-water mark but past the end of the file
}

// BucketReport is one bucket in the report.
type BucketReport struct {
	Path     []string `json:"path"`
	PathHex  []string `json:"path_hex"`
	Root     uint64   `json:"root"` // 0 for inline
	Inline   bool     `json:"inline"`
	Records  int      `json:"records"`
	Nodes    int      `json:"nodes"`
	Overflow int      `json:"overflow"`
	Depth    int      `json:"depth"`
	Damaged  bool     `json:"damaged"`
	First    *Key     `json:"first,omitempty"`
	Last     *Key     `json:"last,omitempty"`
}

func bucketReports(bs []*Bucket) []BucketReport {
	out := []BucketReport{}
	for _, b := range bs {
		if len(b.Path) == 0 {
			continue // the root tree holds only buckets
		}
		br := BucketReport{Path: b.pathStrings(), Root: b.Root, Inline: b.Inline, Records: b.Records,
			Nodes: b.Nodes, Overflow: b.Overflow, Depth: b.Depth, Damaged: b.Damaged}
		for _, p := range b.Path {
			br.PathHex = append(br.PathHex, hex.EncodeToString(p))
		}
		if b.First != nil {
			br.First = MakeKey(b.First, b.IsKeyBucket())
			br.Last = MakeKey(b.Last, b.IsKeyBucket())
		}
		out = append(out, br)
	}
	return out
}
