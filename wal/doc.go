// Package wal reads etcd's write-ahead log without ever stopping silently,
// replays it onto a rebuilt bbolt db with etcd's own apply code, and writes a
// member dir etcd starts from.
//
// # Reading
//
// Read decodes every %016x-%016x.wal segment with boltfix's own loop instead
// of etcd's wal.ReadAll, which treats an unexpected EOF as a clean end, and
// whose Repair cut 34 valid records after a 3-byte overwrite. The frame
// format is etcd's: a little-endian u64 length (low 56 bits; when the top bit
// is set, the top byte's low 3 bits are the padding to 8 bytes), then a
// walpb.Record{type, crc, data}. Records chain a CRC32-Castagnoli over their
// data; a CRC record opens each segment with the chain value so far.
//
// Each failure is a *Stop naming the segment, the byte offset of the frame
// and a Cause: torn-tail (last record of the last segment partly written),
// length-past-eof, bad-length, undecodable-record, unknown-record-type,
// crc-mismatch, bad-payload, data-after-end (non-zero bytes after the zero
// frame etcd takes as the end), crc-chain-break, missing-segment,
// metadata-conflict, io-error. After a Stop the reader resynchronises: it
// scans forward 8 bytes at a time (frames are 8-byte aligned) for a frame
// that decodes, whose payload decodes, and whose successor chains from its
// CRC, and keeps everything from there, flagged (Flag). Entries are kept with
// raft's overwrite semantics; a flagged entry may not overwrite an
// unflagged one, and records failing their CRC are listed in Log.Suspect
// and never used.
//
// Hardening: Read never panics on the bytes of a segment; every length is
// checked against the file size before it is sliced or allocated, so memory
// is bounded by the size of the segment being read plus what the Log keeps
// (proto.Unmarshal copies, nothing aliases the segment buffer).
//
// # Memory
//
// The Log keeps no entry data: an Entry is its index, term, type, size and
// place (segment, offset, a checksum), about 120 bytes, and the segment
// files stay open. Entry.Load reads the record again (through a 1 MiB
// window, so that walking the entries in order costs one read per window)
// and checks it is the one Read found; DecodeEntry decodes it. Replay, the
// repair's audit and membership, and dump load one entry at a time, so a
// 5 x 64 MB WAL costs a repair one segment buffer while it is read and
// about 120 bytes an entry after.
//
// # Replay
//
// Replay opens a healthy db (one boltfix wrote) with etcd's backend, builds
// the lessor, mvcc store, auth and alarm stores and membership as etcd's
// NewServer does, and applies each committed entry above the db's
// consistent_index through apply.NewUberApplier, moving consistent_index and
// term as etcd's apply loop does. Each entry's data is read as it is applied.
// Replay is deterministic: the same entries on the same state give the same
// revisions, so CompareRecords can check records carved from a damaged db
// against the records a replay produced, read back from the replayed db one
// at a time (ForEachRecord) rather than kept.
//
// # JSON
//
// `boltfix wal verify --json` prints one Report with schema
// "boltfix.wal.verify/v1"; `boltfix wal dump --json` the same with schema
// "boltfix.wal.dump/v1" and the entries array. Fields:
//
//	schema        string   VerifySchema or DumpSchema
//	dir           string   the WAL directory read
//	clean         bool     no stop anywhere
//	metadata      {node_id, cluster_id} or null
//	hard_state    {term, vote, commit, segment, offset, flag} (the last) or null
//	hard_states   int      HardState records read
//	snapshots     [{index, term, voters, learners, segment, offset, flag}]
//	first_index, last_index, commit_index   uint64 (0 when none)
//	entry_count, overwritten, flagged       int
//	gaps          [{from, to}]   missing index runs between entries
//	segments      [{name, seq, name_index, size, data_end, first_index,
//	                last_index, records: {metadata, entry, state, crc,
//	                snapshot}, stops: [stop]}]
//	stops         [{segment, offset, cause, detail, resumed_at,
//	                skipped_bytes}]   every stop; resumed_at -1 = none after
//	suspect       [entry]  read but not used (crc-mismatch...)
//	entries       [entry]  dump only
//
// where entry is {index, term, type (normal|conf-change|conf-change-v2),
// kind (Kind* constants), text, request (protojson of the decoded
// InternalRaftRequest / ConfChange / ConfChangeV2, or a V2Request), size,
// segment, offset, flag ("" | after-damage | unverified | crc-mismatch)}.
// Fields are only ever added within a schema version.
package wal
