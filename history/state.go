package history

// State is what became of one version of a key.
type State string

const (
	// Live: the key's newest record, a put the live tree still holds.
	Live State = "live"
	// Superseded: a newer put of the key exists and this record is still
	// in the live tree (etcd can read it at its revision).
	Superseded State = "superseded"
	// Compacted: a newer put of the key exists and compaction removed
	// this record from the live tree; it survives on a free page.
	Compacted State = "compacted"
	// Deleted: the key's next record is a tombstone (DeletedAt), or this
	// is the newest version of a key the intact live tree no longer holds
	// (its tombstone was compacted away: DeletedAt 0). A tombstone record
	// itself is Deleted too.
	Deleted State = "deleted"
	// Unknown: the record lies where the tree is damaged (or above the
	// tree's newest record): a newer version may have been lost with it.
	Unknown State = "unknown"
)
