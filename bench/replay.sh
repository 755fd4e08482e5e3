#!/usr/bin/env bash
# End-to-end load test of `vigil replay`: build the binary, generate a
# deterministic stream of EVENTS events (default 1,000,000, about 350 bytes
# each, 10,000 credentials), replay it from a file RUNS times (default 3)
# with stdout to a file, check that every usable line got exactly one
# decision, and report events/s per run and the median.
#
#   bench/replay.sh                 # 1,000,000 events, 3 runs
#   EVENTS=200000 RUNS=5 bench/replay.sh
#   KEEP=1 bench/replay.sh          # keep the work directory
#
# Extra arguments are passed to `vigil replay` (e.g. --workers 1).
set -euo pipefail

cd "$(dirname "$0")/.."
events=${EVENTS:-1000000}
runs=${RUNS:-3}
work=$(mktemp -d "${TMPDIR:-/tmp}/vigil-bench.XXXXXX")
if [[ -z "${KEEP:-}" ]]; then
	trap 'rm -rf "$work"' EXIT
else
	echo "work directory: $work"
fi

go build -o "$work/vigil" ./cmd/vigil
go build -o "$work/genevents" ./bench/genevents
"$work/genevents" -n "$events" -bad-every 10000 -raw-token-every 50 -o "$work/events.jsonl" 2>"$work/gen.txt"
valid=$(awk '$1 == "events" {print $2}' "$work/gen.txt")
bad=$(awk '$1 == "bad" {print $2}' "$work/gen.txt")
size=$(wc -c <"$work/events.jsonl")
echo "input: $valid events + $bad bad lines, $((size / 1000000)) MB, $(nproc) CPUs, $(go version | cut -d' ' -f3)"

# The key is fixed so that token ids do not depend on the run.
export VIGIL_FINGERPRINT_KEY=vigil-bench-fingerprint-key-0001

rates=()
for i in $(seq "$runs"); do
	start=$(date +%s%N)
	"$work/vigil" replay "$@" "$work/events.jsonl" >"$work/out.jsonl" 2>"$work/err.txt"
	end=$(date +%s%N)
	got=$(wc -l <"$work/out.jsonl")
	if [[ "$got" -ne "$valid" ]]; then
		echo "run $i: $got decision lines for $valid usable events" >&2
		exit 1
	fi
	reported=$(grep -c '^line ' "$work/err.txt" || true)
	if [[ "$reported" -ne "$bad" ]]; then
		echo "run $i: $reported error lines for $bad bad lines" >&2
		exit 1
	fi
	rate=$(((valid * 1000000000) / (end - start)))
	rates+=("$rate")
	awk -v i="$i" -v ns="$((end - start))" -v rate="$rate" 'BEGIN {printf "run %d: %.2fs, %d events/s\n", i, ns / 1e9, rate}'
done
median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
echo "median: $median events/s (wall clock, process start to exit, output to a file)"
