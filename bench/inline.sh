#!/usr/bin/env bash
# Load test of `vigil serve` on loopback: forward-auth over HTTP with wrk,
# then Envoy's gRPC ext_authz with h2load (nghttp2, a C HTTP/2 client, as
# Envoy is C++; one CheckRequest framed by bench/grpcframe, so one
# credential) and with bench/grpcload (grpc-go, 500 credentials; its own
# client cost dominates). Debian's packages; `make deps` installs them. The load generator runs on the same host: on a
# 2-core machine it takes one core, so vigil gets the other (GOMAXPROCS=1,
# VIGIL_PROCS to change it). Three runnable threads on two cores make the
# kernel time-slice them, and the slices (milliseconds) land in the tail.
#
#   DURATION=10s CONNS=16 THREADS=1 TOKENS=500 RUNS=3 VIGIL_PROCS=1 bench/inline.sh
#
# STATE=redis keeps the profiles in a redis-server of the script's own
# (state.backend redis, port REDIS_PORT): a third process on the two
# cores.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNS=${CONNS:-16}
VIGIL_PROCS=${VIGIL_PROCS:-1}
THREADS=${THREADS:-1}
TOKENS=${TOKENS:-500}
RUNS=${RUNS:-3}
STATE=${STATE:-memory}
REDIS_PORT=${REDIS_PORT:-16379}
HTTP_ADDR=127.0.0.1:18080
GRPC_ADDR=127.0.0.1:19001
ADMIN_ADDR=127.0.0.1:19090

command -v wrk >/dev/null || { echo "wrk not found: run make deps" >&2; exit 1; }
command -v h2load >/dev/null || { echo "h2load not found: run make deps" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT

go build -trimpath -o "$tmp/vigil" ./cmd/vigil
go build -trimpath -o "$tmp/grpcload" ./bench/grpcload
go build -trimpath -o "$tmp/grpcframe" ./bench/grpcframe
"$tmp/grpcframe" -o "$tmp/check.bin"
cat >"$tmp/vigil.yaml" <<YAML
serve:
  listen: $HTTP_ADDR
  grpc_listen: $GRPC_ADDR
  admin_listen: $ADMIN_ADDR
YAML
if [[ $STATE == redis ]]; then
	command -v redis-server >/dev/null || { echo "redis-server not found: run make deps" >&2; exit 1; }
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
		--maxmemory 512mb --maxmemory-policy volatile-ttl >"$tmp/redis.log" 2>&1 &
	for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
	cat >>"$tmp/vigil.yaml" <<YAML
state:
  backend: redis
  redis:
    addrs: ["127.0.0.1:$REDIS_PORT"]
YAML
fi
GOMAXPROCS=$VIGIL_PROCS VIGIL_FINGERPRINT_KEY=bench-key-0123456789abcdef "$tmp/vigil" serve --config "$tmp/vigil.yaml" 2>"$tmp/vigil.log" &
for _ in $(seq 50); do curl -sf "http://$HTTP_ADDR/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "http://$HTTP_ADDR/readyz" >/dev/null || { cat "$tmp/vigil.log" >&2; exit 1; }

echo "== forward-auth (HTTP/1.1 keep-alive), wrk -t$THREADS -c$CONNS -d$DURATION, $TOKENS credentials, vigil GOMAXPROCS=$VIGIL_PROCS, state $STATE"
for r in $(seq "$RUNS"); do
	TOKENS=$TOKENS wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s bench/forwardauth.lua "http://$HTTP_ADDR" >"$tmp/wrk.$r"
	awk -v r="$r" '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {n2=$NF}
		END {printf "run %d: %s decisions/s, p50 %s, p99 %s%s\n", r, rps, p50, p99, (n2 ? ", non-2xx " n2 : "")}' "$tmp/wrk.$r"
done

echo "== gRPC ext_authz, h2load -c 4 -m 4 (16 in flight), one credential"
for r in $(seq "$RUNS"); do
	h2load -n 150000 -c 4 -m 4 -t 1 -d "$tmp/check.bin" -H 'content-type: application/grpc' -H 'te: trailers' \
		--log-file="$tmp/h2.$r" "http://$GRPC_ADDR/envoy.service.auth.v3.Authorization/Check" >"$tmp/h2out.$r"
	rps=$(awk '/finished in/ {print $4}' "$tmp/h2out.$r")
	sort -n -k3 "$tmp/h2.$r" | awk -v r="$r" -v rps="$rps" '{a[NR]=$3} $2!=200 {bad++}
		END {printf "run %d: %s decisions/s, p50 %.2fms, p99 %.2fms, p99.9 %.2fms%s\n", r, rps, a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000, a[int(NR*0.999)]/1000, (bad ? ", non-200 " bad : "")}'
done

echo "== gRPC ext_authz, grpcload -c $CONNS -d $DURATION, $TOKENS credentials"
for r in $(seq "$RUNS"); do
	"$tmp/grpcload" -addr "$GRPC_ADDR" -c "$CONNS" -conns 2 -d "$DURATION" -tokens "$TOKENS" 2>&1 | sed "s/^/run $r: /"
done

echo "== vigil's own view (decision latency histogram, /metrics)"
curl -s "http://$ADMIN_ADDR/metrics" | grep -E '^vigil_(decision_duration_seconds_(count|sum)|active_profiles|decisions_total)' | head -12
