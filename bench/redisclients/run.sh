#!/usr/bin/env bash
# Reproduces the README figures.
#
#   REDIS_ADDR=127.0.0.1:6379 ROUNDS=6 BENCHTIME=2000x ./run.sh
#
# Builds the benchmark binary once, runs TestPattern, then ROUNDS rounds. In
# each round every case runs once per client, the clients of a case back to
# back (one process each) and in an order that rotates from round to round,
# so slow drifts of the shared machine's load hit both clients alike. All
# processes share one preloaded keyspace (VIGIL_BENCH_RUNID); the last step
# deletes it. Results: $OUT/raw.txt and, with benchstat, $OUT/benchstat*.txt.
set -euo pipefail
cd "$(dirname "$0")"
ROUNDS=${ROUNDS:-6}
BENCHTIME=${BENCHTIME:-2000x}
OUT=${OUT:-results}
mkdir -p "$OUT"
bin="$OUT/redisclients.test"
go test -c -o "$bin" .
"$bin" -test.run '^TestPattern$' -test.count 1 -test.v | grep -E '^(---|ok|PASS|FAIL)' >&2

runid=$(head -c 4 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-6)
export VIGIL_BENCH_RUNID=$runid VIGIL_BENCH_KEEP=1
trap 'VIGIL_BENCH_KEEP=0 "$bin" -test.run "^TestPattern$" -test.count 1 >/dev/null; rm -f "$bin"' EXIT

# case: "<sub-benchmark regex> <benchmark> <benchmark> ..."
cases=(
	"^batch=1$ GoRedis Rueidis RueidisLuaExecMulti"
	"^batch=16$ GoRedis Rueidis RueidisLuaExecMulti"
	"^batch=256$ GoRedis Rueidis RueidisLuaExecMulti"
	"^batch=1$ GoRedisPeer RueidisPeer"
	"^batch=16$ GoRedisPeer RueidisPeer"
	"^goroutines=4$/^batch=64$ GoRedisConcurrent RueidisConcurrent"
)
raw="$OUT/raw.txt"
: >"$raw"
for r in $(seq 1 "$ROUNDS"); do
	for c in "${cases[@]}"; do
		sub=${c%% *}
		read -r -a names <<<"${c#* }"
		n=${#names[@]}
		for i in $(seq 0 $((n - 1))); do
			name=${names[$(((i + r) % n))]}
			"$bin" -test.run '^$' -test.bench "^Benchmark$name\$/$sub" \
				-test.benchtime "$BENCHTIME" -test.count 1 2>/dev/null | tee -a "$raw" |
				grep '^Benchmark' | sed "s/^/round $r: /" >&2
		done
	done
done
bs=$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")
if [ -x "$bs" ]; then
	"$bs" "$raw" >"$OUT/benchstat.txt"
	echo "wrote $OUT/benchstat.txt" >&2
else
	echo "benchstat not found (go install golang.org/x/perf/cmd/benchstat@latest); raw results in $raw" >&2
fi
