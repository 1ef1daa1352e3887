#!/usr/bin/env bash
# Scale benchmark (issue 13): boltfix scan, salvage and repair of a generated
# etcd-shaped db against the floors of the same file, measured in one run:
#
#   cat FILE >/dev/null                      read floor (scan is judged against it)
#   dd if=FILE of=OUT bs=4M conv=fsync       read + durable write floor (salvage, repair)
#
#   bench/run.sh                  # SIZE=1GiB
#   SIZE=4GiB bench/run.sh        # 4 and 8 GiB only when asked: disk and time
#   SIZE=256MiB bench/run.sh      # a quick look
#   DAMAGED=0 bench/run.sh        # skip the damaged variant
#   REPAIR=0 bench/run.sh         # skip repair
#   BBOLT=1 bench/run.sh          # also bbolt check and bbolt compact
#   PROFILE=1 bench/run.sh        # heap (near peak) and CPU profiles per step in $WORK/prof
#   WAL=1 bench/run.sh            # also a full-size WAL: boltfix's replay against etcd's own start
#   WAL=only bench/run.sh         # the floors and the WAL steps only
#   DROP_CACHES=1 bench/run.sh    # (root) empty the page cache before each step's warm-up
#
# Inputs are generated once into bench/work/ (git ignores it; WORK=... moves
# it): etcd-$SIZE.db (bench/gendb), etcd-$SIZE-damaged.db (the key bucket's
# root branch page half zeroed: about half the records orphaned and carved,
# the case that holds the most state), etcd-$SIZE.dir (a data dir around the
# db with a small WAL, as etcdutl snapshot restore writes it). Outputs go to
# $WORK/out and are removed after each step. Each step runs once (RUNS=n for
# the median of n); the page cache is warmed first, so the floors are
# page-cache reads plus (dd) a durable write.
#
# WAL (issue 13, item 3): etcd-$SIZE-wal.dir is the db with WAL_BYTES
# (320MB: five of etcd's 64 MB segments) of committed entries after its
# consistent_index (gendb -wal-bytes: puts of new and existing keys, a few
# deletes), and etcd-$SIZE-wal.dir.expect.json the final state of the keys
# the last entries wrote. Measured: boltfix repair on it (with and without
# the start check; BOLTFIX_PHASE_TIMES gives its WAL time: "reading the
# inputs" (the WAL, and the membership from it), "checking the db against
# the WAL" (the audit) and "replaying the WAL", the last also on its own),
# then checked against the expected state (gendb -verify); and etcd's own
# start on a copy of it (the etcd of go.mod, fixtures/internal/etcdmain,
# fsync on, as a restarted member runs) until /readyz answers, which it
# does once every entry is applied (etcd publishes its member through
# raft, after them), then checked with linearizable reads (gendb
# -verify-url). Entries/s is the WAL's entries over that time. Both times
# include opening the db and rebuilding etcd's index of every key from
# it; etcd's includes its election (a one-member cluster campaigns at
# once). See docs/scale.md section 4.
#
# Memory: "hwm" is the boltfix process's own peak resident set (VmHWM in
# /proc/PID/status: anonymous memory plus mapped file pages, e.g. bbolt's
# mmap of the db it writes); "anon" is the largest RssAnon sampled every
# 50 ms (the heap and stacks: what the process really costs). Neither counts
# the etcd child repair starts for its start check. GNU time's max RSS is in
# $WORK/results for reference (it covers the largest process of the tree).
#
# Targets (issue 13): scan <= 1.5x cat and < 256 MiB; salvage <= 2x dd and
# < 512 MiB; repair <= 3.5x dd and < 1 GiB; memory flat in db size.
# Not in CI: nothing under .ci or go test runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-1GiB}
RUNS=${RUNS:-1}
DAMAGED=${DAMAGED:-1}
DROP_CACHES=${DROP_CACHES:-0}
REPAIR=${REPAIR:-1}
BBOLT=${BBOLT:-0}
PROFILE=${PROFILE:-0}
WAL=${WAL:-0}
WAL_BYTES=${WAL_BYTES:-320MB}
ETCD_PORT=${ETCD_PORT:-23790}
if [ "$WAL" = only ]; then
	DAMAGED=0 REPAIR=0 BBOLT=0
fi
WORK=${WORK:-bench/work}
mkdir -p "$WORK" "$WORK/bin"
DB=$WORK/etcd-$SIZE.db
DMG=$WORK/etcd-$SIZE-damaged.db
DIR=$WORK/etcd-$SIZE.dir
WALDIR=$WORK/etcd-$SIZE-wal.dir
EXPECT=$WALDIR.expect.json
OUT=$WORK/out
BIN=$WORK/bin
PROF=$WORK/prof

if [ ! -x /usr/bin/time ]; then
	echo "installing GNU time" >&2
	apt-get update -qq && apt-get install -y -qq time >/dev/null
fi

go build -o "$BIN/boltfix" ./cmd/boltfix
go build -o "$BIN/gendb" ./bench/gendb
if [ "$WAL" != 0 ]; then
	# etcd of this module's go.mod, as the tests run it (fixtures/process.go).
	go build -o "$BIN/etcd" ./fixtures/internal/etcdmain
fi
if [ "$BBOLT" = 1 ] && ! go build -o "$BIN/bbolt" go.etcd.io/bbolt/cmd/bbolt 2>"$WORK/bbolt-build.err"; then
	# Missing go.sum entries for the CLI's own deps: fetch them, never tidy.
	go mod download go.etcd.io/bbolt
	go build -o "$BIN/bbolt" go.etcd.io/bbolt/cmd/bbolt
fi

if [ ! -s "$DB" ]; then
	rm -f "$DB.tmp"
	"$BIN/gendb" -size "$SIZE" -out "$DB.tmp"
	mv "$DB.tmp" "$DB"
fi
if [ "$DAMAGED" = 1 ] && [ ! -s "$DMG" ]; then
	rm -f "$DMG.tmp"
	"$BIN/gendb" -from "$DB" -damage-depth "${DAMAGE_DEPTH:-0}" -out "$DMG.tmp"
	mv "$DMG.tmp" "$DMG"
fi
if [ "$REPAIR" = 1 ] && [ ! -d "$DIR" ]; then
	rm -rf "$DIR.tmp"
	"$BIN/gendb" -from "$DB" -datadir "$DIR.tmp"
	mv "$DIR.tmp" "$DIR"
fi
if [ "$WAL" != 0 ] && [ ! -d "$WALDIR" ]; then
	rm -rf "$WALDIR.tmp" "$EXPECT.tmp"
	"$BIN/gendb" -from "$DB" -datadir "$WALDIR.tmp" -wal-bytes "$WAL_BYTES" -expect "$EXPECT.tmp"
	mv "$EXPECT.tmp" "$EXPECT"
	mv "$WALDIR.tmp" "$WALDIR"
fi
ls -l "$DB"
cat "$DB" >/dev/null
cat "$DB" >/dev/null
[ "$DAMAGED" = 1 ] && cat "$DMG" >/dev/null
[ "$REPAIR" = 1 ] && cat "$DIR/member/snap/db" >/dev/null
[ "$WAL" != 0 ] && cat "$WALDIR"/member/snap/db "$WALDIR"/member/wal/* >/dev/null

# sample PID: until it exits, the largest RssAnon (kB) and the last VmHWM (kB)
# of PID, written to $WORK/sample.
sample() {
	local pid=$1 anon=0 hwm=0 a h
	while [ -r "/proc/$pid/status" ]; do
		a=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
		h=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
		[ -n "$a" ] && ((a > anon)) && anon=$a
		[ -n "$h" ] && ((h > hwm)) && hwm=$h
		sleep 0.05
	done
	echo "$anon $hwm" >"$WORK/sample"
}

# measure NAME FLOOR CMD...: RUNS runs of CMD (stdout discarded); the
# median elapsed seconds, the largest sampled memory and the last exit code
# go into $WORK/results. FLOOR names the floor step it is judged against.
: >"$WORK/results"
measure() {
	local name=$1 floor=$2
	shift 2
	local times=() cpus=() anon=0 hwm=0 trss=0 rc=0 slug
	slug=$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_')
	for ((i = 0; i < RUNS; i++)); do
		rm -rf "$OUT" "$OUT.db"
		rc=0
		local env=()
		if [ "$PROFILE" = 1 ]; then
			mkdir -p "$PROF"
			env=(BOLTFIX_MEMPROFILE="$PROF/$slug.heap" BOLTFIX_CPUPROFILE="$PROF/$slug.cpu")
		fi
		env "${env[@]}" /usr/bin/time -v -o "$WORK/time.out" "$@" >"$WORK/cmd.out" 2>"$WORK/cmd.err" &
		local tpid=$! cpid=""
		for ((j = 0; j < 100; j++)); do
			cpid=$(awk '{print $1}' "/proc/$tpid/task/$tpid/children" 2>/dev/null) || true
			[ -n "$cpid" ] && break
			sleep 0.01
		done
		echo "0 0" >"$WORK/sample"
		[ -n "$cpid" ] && sample "$cpid"
		wait "$tpid" || rc=$?
		# AFTER names a function that looks at the output before it goes.
		if [ -n "${AFTER:-}" ]; then "$AFTER" "$name"; fi
		local el r a h
		el=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,x,":"); s=0; for(j=1;j<=n;j++) s=s*60+x[j]; print s}' "$WORK/time.out")
		r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.out")
		read -r a h <"$WORK/sample"
		times+=("$el")
		cpus+=("$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$WORK/time.out")")
		((r > trss)) && trss=$r
		((a > anon)) && anon=$a
		((h > hwm)) && hwm=$h
	done
	rm -rf "$OUT" "$OUT.db"
	local med cpu
	med=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	cpu=$(printf '%s\n' "${cpus[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	echo "$name|$floor|$med|$hwm|$anon|$trss|$rc|$cpu" >>"$WORK/results"
	echo "  $name: ${med}s, hwm $((hwm / 1024)) MiB, anon $((anon / 1024)) MiB, exit $rc" >&2
}

# measure_etcd NAME DIR: etcd's own start on a copy of DIR, from exec to
# the first answer of /readyz, RUNS times (median), with its largest
# RssAnon and VmHWM and its CPU time; then its keys are checked against
# $EXPECT (linearizable reads) and it is stopped. A line like measure's goes
# to $WORK/results, the check to $WORK/wal-results.
measure_etcd() {
	local name=$1 dir=$2 data=$WORK/etcd-start
	local times=() cpus=() anon=0 hwm=0 rc=0 ok=ok
	local curl="http://127.0.0.1:$ETCD_PORT" peer="http://127.0.0.1:$((ETCD_PORT + 1))"
	local tck
	tck=$(getconf CLK_TCK)
	for ((i = 0; i < RUNS; i++)); do
		rm -rf "$data"
		cp -a "$dir" "$data"
		local t0 t1 epid spid a h cpu
		t0=$(date +%s.%N)
		"$BIN/etcd" --name master-0 --data-dir "$data" \
			--listen-client-urls "$curl" --advertise-client-urls "$curl" --listen-peer-urls "$peer" \
			--quota-backend-bytes=$((8 << 30)) --log-level=warn >"$WORK/etcd.log" 2>&1 &
		epid=$!
		echo "0 0" >"$WORK/sample"
		sample "$epid" &
		spid=$!
		until curl -sf -m 1 "$curl/readyz" >/dev/null 2>&1; do
			if ! kill -0 "$epid" 2>/dev/null; then
				echo "  $name: etcd exited before serving: $(tail -n 3 "$WORK/etcd.log")" >&2
				rc=1
				break
			fi
			sleep 0.02
		done
		t1=$(date +%s.%N)
		cpu=$(awk -v t="$tck" '{printf "%.2f", ($14 + $15) / t}' "/proc/$epid/stat" 2>/dev/null || echo 0)
		if [ "$rc" = 0 ] && ! "$BIN/gendb" -expect "$EXPECT" -verify-url "$curl" >>"$WORK/verify.out" 2>&1; then
			ok=FAILED
		fi
		[ "$rc" = 0 ] || ok=FAILED
		kill "$epid" 2>/dev/null || true
		wait "$epid" 2>/dev/null || true
		wait "$spid" || true
		read -r a h <"$WORK/sample"
		times+=("$(echo "$t0 $t1" | awk '{printf "%.2f", $2 - $1}')")
		cpus+=("$cpu")
		((a > anon)) && anon=$a
		((h > hwm)) && hwm=$h
	done
	rm -rf "$data"
	local med cpum
	med=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	cpum=$(printf '%s\n' "${cpus[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	echo "$name|none|$med|$hwm|$anon|0|$rc|$cpum" >>"$WORK/results"
	echo "$name|$med|-|$ok" >>"$WORK/wal-results"
	echo "  $name: ${med}s to serve, hwm $((hwm / 1024)) MiB, anon $((anon / 1024)) MiB, check $ok" >&2
}

# warm FILE...: read into the page cache again before a step, as the floors
# had it: 5 GiB of output written by the step before can evict the next
# step's input (a damaged-db scan measured 2.2 s cold against 1.1 s warm).
# With DROP_CACHES=1 (root: /proc/sys/vm/drop_caches) the page cache is
# emptied first: files read often before (the other inputs) stay on the
# kernel's active list and can push a big step's own input out while it
# writes its output (8 GiB salvage: 74 s with the other inputs cached, 22 s
# without).
warm() {
	if [ "$DROP_CACHES" = 1 ]; then
		sync
		echo 1 >/proc/sys/vm/drop_caches
	fi
	cat "$@" >/dev/null
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "measuring ($RUNS run(s) each; load average $LOAD0)" >&2
warm "$DB"
measure "cat (read floor)" - sh -c "cat '$DB' >/dev/null"
measure "dd conv=fsync (write floor)" - dd if="$DB" of="$OUT.db" bs=4M conv=fsync
if [ "$WAL" != only ]; then
	warm "$DB"
	measure "scan" "cat (read floor)" "$BIN/boltfix" scan "$DB" --json
	warm "$DB"
	measure "salvage" "dd conv=fsync (write floor)" "$BIN/boltfix" salvage "$DB" --out "$OUT.db"
fi
if [ "$DAMAGED" = 1 ]; then
	warm "$DMG"
	measure "scan, damaged" "cat (read floor)" "$BIN/boltfix" scan "$DMG" --json
	warm "$DMG"
	measure "salvage, damaged" "dd conv=fsync (write floor)" "$BIN/boltfix" salvage "$DMG" --out "$OUT.db"
fi
if [ "$REPAIR" = 1 ]; then
	warm "$DIR/member/snap/db"
	measure "repair, small WAL" "dd conv=fsync (write floor)" "$BIN/boltfix" repair "$DIR" --out "$OUT"
	# boltfix's own work, without the etcd it starts on a copy to check
	# the result (etcd's start on a multi-GiB db is etcd's own time).
	warm "$DIR/member/snap/db"
	measure "repair, no start check" "dd conv=fsync (write floor)" "$BIN/boltfix" repair "$DIR" --out "$OUT" --skip-start-check
fi
if [ "$BBOLT" = 1 ]; then
	measure "bbolt check" "cat (read floor)" "$BIN/bbolt" check "$DB"
	measure "bbolt compact" "dd conv=fsync (write floor)" "$BIN/bbolt" compact -o "$OUT.db" "$DB"
fi
if [ "$WAL" != 0 ]; then
	: >"$WORK/wal-results"
	: >"$WORK/verify.out"
	# wal_after STEP: the WAL time boltfix reports and whether the repaired
	# db holds the WAL's writes, before measure removes it.
	wal_after() {
		local wt rt ok
		wt=$(awk '/^phase (reading the inputs|checking the db against the WAL|replaying the WAL) / {s += $NF} END {printf "%.2f", s}' "$WORK/cmd.err")
		rt=$(awk '/^phase replaying the WAL / {s += $NF} END {printf "%.2f", s}' "$WORK/cmd.err")
		if "$BIN/gendb" -expect "$EXPECT" -verify "$OUT/member/snap/db" >>"$WORK/verify.out" 2>&1; then ok=ok; else ok=FAILED; fi
		echo "$1|$wt|$rt|$ok" >>"$WORK/wal-results"
	}
	AFTER=wal_after measure "WAL: repair" "dd conv=fsync (write floor)" env BOLTFIX_PHASE_TIMES=1 "$BIN/boltfix" repair "$WALDIR" --out "$OUT"
	AFTER=wal_after measure "WAL: repair, no start check" "dd conv=fsync (write floor)" env BOLTFIX_PHASE_TIMES=1 "$BIN/boltfix" repair "$WALDIR" --out "$OUT" --skip-start-check
	measure_etcd "WAL: etcd start" "$WALDIR"
fi

echo
echo "db: $DB ($(stat -c %s "$DB") bytes); $RUNS run(s) each (median), warm page cache; cores: $(nproc); load before: $LOAD0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "hwm: boltfix's own peak RSS (VmHWM: anonymous + mapped file pages); anon: largest RssAnon sampled every 50 ms (heap and stacks); the etcd child of repair not counted"
echo "cpu: user + system seconds (GNU time; for repair including its etcd start-check child): on a shared machine, less noisy than the wall time"
echo
printf '| %-28s | %8s | %-16s | %7s | %8s | %9s | %4s |\n' step time "x floor" "cpu s" "hwm MiB" "anon MiB" exit
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ------------------------------ ---------- ------------------ --------- ---------- ----------- ------
awk -F'|' '
	{ t[$1] = $3 }
	{
		if ($2 == "-") ratio = "1"
		else if (t[$2] > 0) ratio = sprintf("%.2fx %s", $3 / t[$2], ($2 ~ /^cat/) ? "cat" : "dd")
		else ratio = "-"
		mem1 = ($4 > 0) ? sprintf("%.0f", $4 / 1024) : "-"
		mem2 = ($5 > 0) ? sprintf("%.0f", $5 / 1024) : "-"
		if ($2 == "-") { mem1 = "-"; mem2 = "-" }
		printf "| %-28s | %7.2fs | %-16s | %7.2f | %8s | %9s | %4s |\n", $1, $3, ratio, $8, mem1, mem2, $7
	}' "$WORK/results"
if [ "$WAL" != 0 ]; then
	entries=$(sed -n 's/^ *"entries": \([0-9]*\).*/\1/p' "$EXPECT")
	rbytes=$(sed -n 's/^ *"record_bytes": \([0-9]*\).*/\1/p' "$EXPECT")
	echo
	echo "WAL: $WALDIR: $entries entries, $rbytes bytes of records in $(ls "$WALDIR/member/wal" | grep -c '\.wal$') segments, after the db's consistent_index"
	echo "WAL time: boltfix's phases \"reading the inputs\" (the WAL and the membership), \"checking the db against the WAL\" (audit) and \"replaying the WAL\" (also alone: replay); etcd's: exec to /readyz"
	echo "check: the repaired db (gendb -verify) or etcd's answers (gendb -verify-url) hold the WAL's last writes ($WORK/verify.out)"
	echo
	printf '| %-28s | %8s | %9s | %9s | %8s | %9s | %8s | %-6s |\n' step time "WAL time" "entries/s" replay "entries/s" "anon MiB" check
	printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' ------------------------------ ---------- ----------- ----------- ---------- ----------- ---------- --------
	awk -F'|' -v n="$entries" '
		FNR == NR { t[$1] = $3; anon[$1] = $5; next }
		{
			rt = ($3 == "-") ? "-" : sprintf("%.2fs", $3)
			rr = ($3 == "-" || $3 == 0) ? "-" : sprintf("%.0f", n / $3)
			printf "| %-28s | %7.2fs | %8.2fs | %9.0f | %8s | %9s | %8.0f | %-6s |\n", $1, t[$1], $2, ($2 > 0 ? n / $2 : 0), rt, rr, anon[$1] / 1024, $4
		}' "$WORK/results" "$WORK/wal-results"
fi
