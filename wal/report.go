package wal

// Schema names of the JSON documents, bumped on any incompatible change.
const (
	VerifySchema = "boltfix.wal.verify/v1"
	DumpSchema   = "boltfix.wal.dump/v1"
)

// Report is the JSON form of a Log: what `boltfix wal verify --json` and
// `boltfix wal dump --json` print. See the package documentation for the
// field list.
type Report struct {
	Schema      string      `json:"schema"`
	Dir         string      `json:"dir"`
	Clean       bool        `json:"clean"`
	Metadata    *Metadata   `json:"metadata"`
	HardState   *HardState  `json:"hard_state"`
	HardStates  int         `json:"hard_states"`
	Snapshots   []Snapshot  `json:"snapshots"`
	FirstIndex  uint64      `json:"first_index"`
	LastIndex   uint64      `json:"last_index"`
	CommitIndex uint64      `json:"commit_index"`
	EntryCount  int         `json:"entry_count"`
	Overwritten int         `json:"overwritten"`
	Flagged     int         `json:"flagged"`
	Gaps        []Gap       `json:"gaps"`
	Segments    []*Segment  `json:"segments"`
	Stops       []*Stop     `json:"stops"`
	Suspect     []EntryInfo `json:"suspect"`
	// Entries is filled by dump only.
	Entries []EntryInfo `json:"entries,omitempty"`
}

// Report summarises l. withEntries adds every entry's description (dump).
func (l *Log) Report(withEntries bool) *Report {
	r := &Report{
		Schema:      VerifySchema,
		Dir:         l.Dir,
		Clean:       l.Clean(),
		Metadata:    l.Metadata,
		HardState:   l.HardState,
		HardStates:  l.HardStates,
		Snapshots:   nonNil(l.Snapshots),
		FirstIndex:  l.FirstIndex(),
		LastIndex:   l.LastIndex(),
		CommitIndex: l.CommitIndex(),
		EntryCount:  len(l.Entries),
		Overwritten: l.Overwritten,
		Gaps:        nonNil(l.Gaps),
		Segments:    l.Segments,
		Stops:       nonNil(l.Stops()),
		Suspect:     []EntryInfo{},
	}
	for _, s := range l.Segments {
		if s.Stops == nil {
			s.Stops = []*Stop{}
		}
	}
	for _, e := range l.Entries {
		if e.Flag != FlagNone {
			r.Flagged++
		}
	}
	for _, e := range l.Suspect {
		r.Suspect = append(r.Suspect, e.Info())
	}
	if withEntries {
		r.Schema = DumpSchema
		r.Entries = make([]EntryInfo, 0, len(l.Entries))
		for _, e := range l.Entries {
			r.Entries = append(r.Entries, e.Info())
		}
	}
	return r
}

// Info describes e with where it was read. Its data is read again for it
// (Load); an entry that cannot be is described as unreadable.
func (e *Entry) Info() EntryInfo {
	re, err := e.Load()
	var i EntryInfo
	if err != nil {
		i = EntryInfo{Index: e.Index, Term: e.Term, Type: entryType(e.Type), Kind: KindUnreadable, Text: "unreadable: " + err.Error(), Size: e.Size}
	} else {
		i = Describe(re)
	}
	i.Segment, i.Offset, i.Flag = e.Segment, e.Offset, e.Flag
	return i
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
