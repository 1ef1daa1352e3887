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
// A repair is a plan, then its execution. Where each part is:
//
//   - preflight.go: the checks that refuse before any work (output path,
//     input types, flags, something to repair from);
//   - plan.go: NewPlan reads the WAL and scans the db (read-only) into a
//     Plan; membership.go refuses one member of a multi-member cluster;
//   - strategy.go: the recovery decision (full replay, db and WAL, WAL
//     only, db only) with its evidence, and the list of steps;
//   - execute.go: Plan.Execute runs the steps in order, passing a state
//     from one to the next, and records each in the Report;
//   - step_salvage.go, audit.go, anchor.go, step_replay.go, step_lost.go,
//     step_member.go: one function per step kind;
//   - cluster_plan.go, cluster.go: RunCluster, several members' dirs at
//     once (a ClusterPlan, then its execution; each member's db is
//     repaired by its own plan).
//
// The input data dir is never modified: everything is written under a
// temporary directory next to the output and renamed into place at the end.
// A plan writes nothing at all.
package repair
