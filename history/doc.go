// Package history finds every version of every etcd key under a prefix
// anywhere in a bbolt file: the records the live tree reaches and the
// key-bucket records still lying on free, orphan and past-high-water pages
// (read with pagewalk, the way salvage carves), and the records left in
// freed overflow pages that no header describes any more (raw.go).
// Revision records are immutable, so each copy found is true history;
// copies are merged by revision and each version is given a state: live,
// superseded, compacted, deleted (with the tombstone's revision when it was
// found) or unknown (it lies where the tree is damaged, so nothing can be
// said).
//
// Collect reads the file through a pagewalk.Result: it never panics on
// damaged pages, keeps only the records under the prefix (memory bounded by
// the file's size), takes no lock, and says when the file changed while it
// was read (a running etcd).
package history
