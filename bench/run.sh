#!/usr/bin/env bash
# Benchmark boltfix against cat and the bbolt CLI on a healthy 1 GiB
# etcd-shaped db (generated once into bench/work/, which git ignores).
#
#   bench/run.sh                 # SIZE=1GiB RUNS=3 by default
#   SIZE=256MiB RUNS=1 bench/run.sh
#
# Targets: boltfix scan <= 1.5x cat, faster than bbolt check, < 256 MiB RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-1GiB}
RUNS=${RUNS:-3}
WORK=bench/work
mkdir -p "$WORK"
DB=$WORK/etcd-$SIZE.db
BIN=$WORK/bin
mkdir -p "$BIN"

if [ ! -x /usr/bin/time ]; then
	echo "installing GNU time" >&2
	apt-get update -qq && apt-get install -y -qq time >/dev/null
fi

go build -o "$BIN/boltfix" ./cmd/boltfix
if ! go build -o "$BIN/bbolt" go.etcd.io/bbolt/cmd/bbolt 2>"$WORK/bbolt-build.err"; then
	# Missing go.sum entries for the CLI's own deps: fetch them, never tidy.
	go mod download go.etcd.io/bbolt
	go build -o "$BIN/bbolt" go.etcd.io/bbolt/cmd/bbolt
fi

if [ ! -s "$DB" ]; then
	go run ./bench/gendb -size "$SIZE" -out "$DB.tmp"
	mv "$DB.tmp" "$DB"
fi
ls -l "$DB"
cat "$DB" >/dev/null
cat "$DB" >/dev/null

HAVE_SALVAGE=0
if "$BIN/boltfix" salvage --help >/dev/null 2>&1; then
	HAVE_SALVAGE=1
fi

# measure NAME CMD...: RUNS runs; the median elapsed seconds and the largest
# max RSS go into $WORK/results.
: >"$WORK/results"
measure() {
	local name=$1
	shift
	local times=() cpus=() rss=0 rc=0
	for ((i = 0; i < RUNS; i++)); do
		rm -f /tmp/x.db /tmp/y.db
		rc=0
		/usr/bin/time -v -o "$WORK/time.out" "$@" >/dev/null 2>"$WORK/cmd.err" || rc=$?
		local el r
		el=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(j=1;j<=n;j++) s=s*60+a[j]; print s}' "$WORK/time.out")
		r=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.out")
		times+=("$el")
		cpus+=("$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$WORK/time.out")")
		((r > rss)) && rss=$r
	done
	local med cpu
	med=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	cpu=$(printf '%s\n' "${cpus[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
	echo "$name|$med|$rss|$rc|$cpu" >>"$WORK/results"
	echo "  $name: ${med}s (cpu ${cpu}s), max RSS $((rss / 1024)) MiB, exit $rc" >&2
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "measuring ($RUNS runs each, median; load average $LOAD0)" >&2
measure "cat" sh -c "cat '$DB' >/dev/null"
measure "boltfix scan --json" sh -c "'$BIN/boltfix' scan '$DB' --json >/dev/null"
measure "boltfix scan --deep --json" sh -c "'$BIN/boltfix' scan '$DB' --deep --json >/dev/null"
measure "bbolt check" "$BIN/bbolt" check "$DB"
if [ "$HAVE_SALVAGE" = 1 ]; then
	RUNS=1 measure "boltfix salvage" "$BIN/boltfix" salvage "$DB" --out /tmp/x.db --force
fi
RUNS=1 measure "bbolt compact" "$BIN/bbolt" compact -o /tmp/y.db "$DB"
rm -f /tmp/x.db /tmp/y.db
[ "$HAVE_SALVAGE" = 1 ] || echo "(boltfix salvage: not in this build, skipped)" >&2

cat_s=$(awk -F'|' '$1=="cat" {print $2}' "$WORK/results")
echo
echo "db: $DB ($(stat -c %s "$DB") bytes), median of $RUNS runs (salvage, compact: 1 run); cores: $(nproc); load before: $LOAD0"
printf '%-28s %9s %9s %9s %12s %5s\n' command seconds "x cat" "cpu s" "max RSS MiB" exit
awk -F'|' -v cat="$cat_s" '{
	ratio = (cat > 0) ? sprintf("%.2f", $2 / cat) : "-"
	printf "%-28s %9.2f %9s %9.2f %12.1f %5s\n", $1, $2, ratio, $5, $3 / 1024, $4
}' "$WORK/results"
