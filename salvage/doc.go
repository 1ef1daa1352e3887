// Package salvage copies every record still on disk out of a damaged etcd
// bbolt file into a fresh, valid one.
//
// It reads with pagewalk, never with bbolt, and uses bbolt only to write the
// new file. Records come from two places:
//
//   - the best tree pagewalk could walk (all buckets, including etcd's
//     mutable ones: meta, members, lease, auth*, alarm, cluster, which must
//     come from one consistent tree and are never carved);
//   - carved pages: free, orphan and past-the-high-water-mark leaf pages,
//     and pages a damaged pointer no longer reaches. Only etcd `key`-bucket
//     records are carved: revision -> mvccpb.KeyValue records are immutable,
//     so a copy found anywhere is true history.
//
// The one exception is compaction: a carved record below the finished
// compaction revision whose key has no newer record may be garbage that
// compaction deleted, and adding it back would resurrect a deleted key.
// By default such records are left out and listed; Options.Aggressive keeps
// them, flagged.
//
// The Report names every revision range that may be lost (damaged pages,
// gaps in the dense main revisions above the compaction point) and every key
// whose newest surviving record is older than a lost range, so no loss is
// silent.
package salvage
