// Package repair turns a damaged etcd data dir into a new one that etcd
// starts from, with nothing lost that the disk still knows.
//
// It salvages the db (package salvage), reads the WAL (package wal), replays
// the committed entries the salvaged state lacks with etcd's own apply code,
// cross-checks every record the replay regenerates against the records
// carved from the damaged db, and writes a member dir with etcdutl's
// snapshot restore. It then checks its own output: bbolt's consistency
// check, the consistent_index against the new WAL's commit, and a start of
// etcd on a copy that counts the keys it serves.
//
// The input data dir is never modified: everything is written under a
// temporary directory next to the output and renamed into place at the end.
package repair
