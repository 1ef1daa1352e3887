package pagewalk

import (
	"encoding/hex"
	"strconv"
	"unicode/utf8"
)

// Kind names a class of damage. The strings are part of the JSON schema.
type Kind string

const (
	KindMetaInvalid       Kind = "meta-invalid"      // a meta page fails magic, version or checksum
	KindMetaUnusable      Kind = "meta-unusable"     // a valid meta whose root, freelist or page size cannot be right
	KindNoUsableMeta      Kind = "no-usable-meta"    // neither meta can be used; the walk starts from a found root
	KindTruncated         Kind = "file-truncated"    // the high-water mark is past the end of the file
	KindPageIDMismatch    Kind = "page-id-mismatch"  // a reached page's header names another page
	KindPageType          Kind = "invalid-page-type" // a reached page is not a branch or leaf (zeros, garbage, meta)
	KindElementBounds     Kind = "element-out-of-bounds"
	KindKeyOrder          Kind = "key-order"           // keys not ascending, or outside the parent's separator range
	KindChildOutOfRange   Kind = "child-out-of-range"  // a child pgid at or past the high-water mark
	KindChildPastEOF      Kind = "child-past-eof"      // a child pgid past the end of the file
	KindChildIsMeta       Kind = "child-is-meta"       // a child pgid of 0 or 1: a zeroed or torn element
	KindChildIsFreelist   Kind = "child-is-freelist"   // a child pgid that is the freelist page
	KindReachedTwice      Kind = "page-reached-twice"  // a page reached by two pointers: a cycle or a shared subtree
	KindOverflowPastEOF   Kind = "overflow-past-eof"   // a node's overflow pages run past the end of the file
	KindOverflowPastHWM   Kind = "overflow-past-hwm"   // a node's overflow pages run past the high-water mark
	KindInlineBucket      Kind = "bucket-malformed"    // a bucket value or inline bucket page that cannot be read
	KindEmptyBranch       Kind = "empty-branch"        // a branch page with no elements
	KindTreeTooDeep       Kind = "tree-too-deep"       // deeper than any real bbolt tree
	KindFreelistMalformed Kind = "freelist-malformed"  // freelist page unreadable, or ids out of range
	KindFreelistReachable Kind = "freelist-reachable"  // the freelist lists a page the tree reaches
	KindUnreachable       Kind = "unreachable-unfreed" // with a synced freelist: a page neither reached nor free
	KindValueUndecodable  Kind = "value-undecodable"   // --deep: a key-bucket value that is not an mvccpb.KeyValue
	KindFileChanged       Kind = "file-changed"        // the file changed while it was read
	KindZeroedBlock       Kind = "zeroed-block"        // a 4 KiB block of a record's value reads as zeros: a hole or a lost write
	KindZeroedKey         Kind = "zeroed-key"          // a 4 KiB block of zeros covers a record's key: the record is lost
)

// Finding is one piece of damage.
type Finding struct {
	Kind Kind `json:"kind"`
	// Page holds the damaged bytes; nil when no single page does.
	Page *uint64 `json:"page"`
	// Offset is the byte offset of the damaged record in the file.
	Offset *int64 `json:"offset"`
	// Chain is the pages from the tree's root to Page, both included.
	Chain []uint64 `json:"chain"`
	// Bucket is the bucket path (outermost first); empty for the root tree.
	Bucket []string `json:"bucket"`
	// Element is the element index in Page, or nil; Elements spans a run
	// of consecutive elements with the same damage.
	Element  *int    `json:"element"`
	Elements *[2]int `json:"elements,omitempty"`
	// Child is the pgid a bad pointer holds, where that matters.
	Child   *uint64 `json:"child,omitempty"`
	Message string  `json:"message"`
	// Lost is the key range that hangs under the damage.
	Lost *KeyRange `json:"lost,omitempty"`
}

// KeyRange is an open interval of keys: every key strictly after After and
// strictly before Before may be lost. A nil bound is open (start or end).
type KeyRange struct {
	After  *Key `json:"after"`
	Before *Key `json:"before"`
	// Revisions is set in etcd's key bucket: the main revisions that may
	// have records under the damage, inclusive. To is 0 when open-ended.
	Revisions *RevRange `json:"revisions,omitempty"`
}

// RevRange is an inclusive range of etcd main revisions; To 0 = open end.
type RevRange struct {
	From int64 `json:"from"`
	To   int64 `json:"to"`
}

// Key is a key rendered for people and for jq.
type Key struct {
	Hex  string `json:"hex"`
	Text string `json:"text"`
	// Len is the key's length; Truncated says Hex and Text show only its
	// first maxRenderedKey bytes (a hostile page can hold huge keys, and a
	// report must stay small).
	Len       int  `json:"len"`
	Truncated bool `json:"truncated,omitempty"`
	// Revision is set for etcd key-bucket keys.
	Revision *Revision `json:"revision,omitempty"`
}

// maxRenderedKey bounds the bytes of a key a finding renders.
const maxRenderedKey = 256

// MakeKey renders k; rev decodes etcd revision keys.
func MakeKey(k []byte, rev bool) *Key {
	key := &Key{Len: len(k)}
	if len(k) > maxRenderedKey {
		k, key.Truncated = k[:maxRenderedKey], true
	}
	key.Hex, key.Text = hex.EncodeToString(k), printable(k)
	if rev {
		if r, ok := ParseRevision(k); ok {
			key.Revision = &r
			key.Text = r.String()
		}
	}
	return key
}

// printable shows k as text when it is printable UTF-8, else quoted.
func printable(k []byte) string {
	if utf8.Valid(k) {
		ok := true
		for _, r := range string(k) {
			if !strconv.IsPrint(r) {
				ok = false
				break
			}
		}
		if ok {
			return string(k)
		}
	}
	s := strconv.Quote(string(k))
	return s[1 : len(s)-1]
}

func itoa(i int) string { return strconv.Itoa(i) }

func u64p(v uint64) *uint64 { return &v }
func i64p(v int64) *int64   { return &v }
func intp(v int) *int       { return &v }
