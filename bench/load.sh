#!/usr/bin/env bash
# Load benchmark: wrk against three targets on loopback, one after the other, same settings:
#   origin   nginx serving a 4 KiB static "video segment" (the baseline)
#   nginx    nginx + secure_link (md5 + expires link), 2 workers, proxy_pass to the origin
#   vidgate  vidgate serve (server token with a session, memory store), proxying to the origin
# and prints a markdown table: req/s, p99, ratio vs nginx, ratio vs the direct origin.
#
# Usage (from anywhere, as root or with wrk/nginx already installed):
#   bench/load.sh
#   DURATION=20 CONNECTIONS=128 THREADS=2 bench/load.sh
# Env: DURATION (seconds per measurement, 10), WARMUP (seconds, 2), CONNECTIONS (64),
#      THREADS (wrk threads, 2), ORIGIN_WORKERS (1), SKIP_VIDGATE=1 (origin + nginx only),
#      ROUNDS (1; N > 1 repeats origin, nginx, vidgate N times interleaved and reports medians:
#      use it on a busy machine; the time grows N-fold),
#      VIDGATE=/path/to/binary (bench that build instead of building target/release/vidgate),
#      PERF=1 (after the table, profile vidgate with perf during one more wrk run; top symbols).
# All traffic goes to 127.0.0.1; every process it starts is killed on exit.
set -euo pipefail

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
# The origin gets 1 worker: serving a 4 KiB file from the page cache is cheap, one worker keeps
# the origin's cost the same under both proxies, and on a small machine (2 cores here) it leaves
# the CPU to the proxy under test instead of having the origin compete with it for both cores.
ORIGIN_WORKERS=${ORIGIN_WORKERS:-1}
ROUNDS=${ROUNDS:-1}
SKIP_VIDGATE=${SKIP_VIDGATE:-0}
PERF=${PERF:-0}
SECRET="bench-secret"

cd "$(dirname "$0")/.."
ROOT=$(pwd)

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'load.sh: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------------
missing=()
for tool in wrk nginx openssl curl python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[[ $PERF == 1 ]] && ! command -v perf >/dev/null 2>&1 && missing+=(linux-perf)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ $SKIP_VIDGATE != 1 && -z ${VIDGATE:-} ]]; then
    VIDGATE="$ROOT/target/release/vidgate"
    log "cargo build --release"
    cargo build --release --quiet
fi
if [[ $SKIP_VIDGATE != 1 ]]; then
    "$VIDGATE" serve --help >/dev/null 2>&1 || die "$VIDGATE has no working 'serve' command"
fi

# --- temp dir, cleanup -------------------------------------------------------------------------
TMP=$(mktemp -d /tmp/vidgate-bench.XXXXXX)
chmod 755 "$TMP" # nginx workers run as an unprivileged user and must read the files below
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Four distinct free loopback ports (all bound at once, so they differ).
read -r P_ORIGIN P_NGINX P_PROXY P_ADMIN < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')

# wait_http URL CODE [CURL_ARGS...]: poll until URL answers CODE (10 s at most).
wait_http() {
    local url=$1 want=$2 i
    shift 2
    for i in $(seq 100); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$@" "$url" || true) == "$want" ]] && return 0
        sleep 0.1
    done
    return 1
}
# status URL: the HTTP status code of a GET.
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1"; }
# same_body URL: the body of a GET equals the origin's file.
same_body() { curl -sf --max-time 5 "$1" | cmp -s - "$TMP/origin/www/videos/v1/seg.ts"; }

# start_nginx NAME: run nginx in the foreground with $TMP/NAME/nginx.conf, prefix $TMP/NAME.
start_nginx() {
    nginx -p "$TMP/$1/" -c "$TMP/$1/nginx.conf" -e "$TMP/$1/error.log" &
    PIDS+=($!)
}

# Settings shared by both nginx instances: no logs, temp files in the prefix, long keep-alive
# (default keepalive_requests is 1000, which would make wrk reconnect; vidgate has no such cap).
nginx_common() {
    cat <<EOF
daemon off;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 4096; }
EOF
}
nginx_http_common() {
    cat <<EOF
    access_log off;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
EOF
}

# --- (1) origin: nginx serving a static 4 KiB segment --------------------------------------------
mkdir -p "$TMP/origin/www/videos/v1" "$TMP/origin/tmp"
head -c 4096 /dev/urandom >"$TMP/origin/www/videos/v1/seg.ts"
chmod -R a+rX "$TMP/origin/www"
cat >"$TMP/origin/nginx.conf" <<EOF
worker_processes $ORIGIN_WORKERS;
$(nginx_common)
http {
$(nginx_http_common)
    sendfile on;
    server {
        listen 127.0.0.1:$P_ORIGIN;
        root $TMP/origin/www;
    }
}
EOF
start_nginx origin
ORIGIN_PID=$!
ORIGIN_URL="http://127.0.0.1:$P_ORIGIN/videos/v1/seg.ts"
wait_http "$ORIGIN_URL" 200 || die "origin did not start: $(cat "$TMP/origin/error.log")"
same_body "$ORIGIN_URL" || die "origin serves the wrong bytes"
log "origin up on :$P_ORIGIN ($ORIGIN_WORKERS worker)"

# --- (2) nginx + secure_link, 2 workers, keep-alive upstream -------------------------------------
mkdir -p "$TMP/nginx/tmp"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 2;
$(nginx_common)
http {
$(nginx_http_common)
    upstream origin {
        server 127.0.0.1:$P_ORIGIN;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$P_NGINX;
        location /videos/ {
            secure_link \$arg_md5,\$arg_expires;
            secure_link_md5 "\$secure_link_expires\$uri $SECRET";
            if (\$secure_link = "") { return 403; }
            if (\$secure_link = "0") { return 410; }
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
start_nginx nginx
NGINX_PID=$!
# The signed link: md5 over "$expires$uri SECRET", base64url without padding.
EXPIRES=$(($(date +%s) + 3600))
MD5=$(echo -n "${EXPIRES}/videos/v1/seg.ts $SECRET" | openssl md5 -binary | openssl base64 | tr +/ -_ | tr -d =)
NGINX_URL="http://127.0.0.1:$P_NGINX/videos/v1/seg.ts?md5=$MD5&expires=$EXPIRES"
wait_http "$NGINX_URL" 200 || die "nginx secure_link did not answer 200: $(cat "$TMP/nginx/error.log")"
same_body "$NGINX_URL" || die "nginx serves the wrong bytes"
code=$(status "http://127.0.0.1:$P_NGINX/videos/v1/seg.ts?md5=AAAAAAAAAAAAAAAAAAAAAA&expires=$EXPIRES")
[[ $code == 403 ]] || die "nginx: a bad link gave $code, not 403"
log "nginx secure_link up on :$P_NGINX (good link 200, bad link 403)"

# --- (3) vidgate: server token with a session, memory store --------------------------------------
if [[ $SKIP_VIDGATE != 1 ]]; then
    mkdir -p "$TMP/vidgate"
    cat >"$TMP/vidgate/vidgate.toml" <<EOF
[proxy]
listen = "127.0.0.1:$P_PROXY"
upstream = "http://127.0.0.1:$P_ORIGIN"

[admin]
listen = "127.0.0.1:$P_ADMIN"
app_token = "bench"
private_key = "bench-key"

[store]
backend = "memory"
EOF
    RUST_LOG=warn "$VIDGATE" serve --config "$TMP/vidgate/vidgate.toml" >"$TMP/vidgate/log" 2>&1 &
    VIDGATE_PID=$!
    PIDS+=("$VIDGATE_PID")
    ADMIN="http://127.0.0.1:$P_ADMIN"
    PROXY="http://127.0.0.1:$P_PROXY"
    wait_http "$ADMIN/healthz" 200 || die "vidgate did not start: $(cat "$TMP/vidgate/log")"

    # A token that reads v1 and needs a session (session_limit), then its one session.
    json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
    TOKEN=$(curl -sf --max-time 5 -u bench:bench-key -H 'content-type: application/json' \
        -d '{"grants": {"read": {"resources": ["v1"]}}, "session_limit": 1}' \
        "$ADMIN/v1/authtokens" | json_field token) || die "could not create a token"
    SESSION=$(curl -sf --max-time 5 -X POST "$PROXY/session?server_auth=$TOKEN" | json_field session) ||
        die "could not open a session"
    VIDGATE_URL="$PROXY/videos/v1/seg.ts?server_auth=$TOKEN&session=$SESSION"
    [[ $(status "$VIDGATE_URL") == 200 ]] || die "vidgate: the token+session URL did not give 200"
    same_body "$VIDGATE_URL" || die "vidgate serves the wrong bytes"
    code=$(status "$PROXY/videos/v1/seg.ts")
    [[ $code == 401 ]] || die "vidgate: no token gave $code, not 401"
    log "vidgate up on :$P_PROXY (token+session 200, no token 401)"
fi

# --- measure -------------------------------------------------------------------------------------
# to_ms VALUE: wrk's "850.00us" / "1.23ms" / "1.01s" -> milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN { n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000
        else if (v ~ /m$/) n *= 60000
        printf "%.2f", n }'
}
# cpu_ticks PID: user+system clock ticks used so far by PID and its children (nginx workers).
cpu_ticks() {
    local p t=0
    for p in "$1" $(ps -o pid= --ppid "$1"); do
        t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
    done
    echo "$t"
}
CLK_TCK=$(getconf CLK_TCK)
declare -A RPS P99 ERRS CPU # keyed "target:round"
# bench NAME URL PID ROUND: measure once (after a warm-up in round 1); keeps req/s, p99 (ms), the
# error count and the CPU time PID (the server wrk talks to) spent per request.
bench() {
    local name=$1 url=$2 pid=$3 key="$1:$4" out t0 t1 reqs
    log "wrk $name, round $4/$ROUNDS: ${DURATION}s (-t$THREADS -c$CONNECTIONS)"
    if [[ $4 == 1 ]]; then
        timeout $((WARMUP + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" "$url" >/dev/null
    fi
    t0=$(cpu_ticks "$pid")
    out=$(timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url")
    t1=$(cpu_ticks "$pid")
    reqs=$(awk '/requests in/ { print $1 }' <<<"$out")
    CPU[$key]=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
    RPS[$key]=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    P99[$key]=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
    # Non-2xx answers and socket errors make a run worthless: count them in the table.
    ERRS[$key]=$(awk '/Non-2xx/ { n += $NF } /Socket errors/ { gsub(",", ""); n += $4 + $6 + $8 + $10 }
        END { print n + 0 }' <<<"$out")
    sleep 1
}

TARGETS=(origin nginx)
[[ $SKIP_VIDGATE != 1 ]] && TARGETS+=(vidgate)
declare -A URL=([origin]=$ORIGIN_URL [nginx]=$NGINX_URL [vidgate]=${VIDGATE_URL:-})
declare -A PID=([origin]=$ORIGIN_PID [nginx]=$NGINX_PID [vidgate]=${VIDGATE_PID:-})
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# Rounds interleave the targets, so that a neighbour's burst of work hits all of them alike.
for round in $(seq "$ROUNDS"); do
    for name in "${TARGETS[@]}"; do bench "$name" "${URL[$name]}" "${PID[$name]}" "$round"; done
done
if [[ $SKIP_VIDGATE != 1 ]]; then
    # Peak and current resident memory of vidgate (kB), read after its runs.
    HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$VIDGATE_PID/status")
    RSS=$(awk '/^VmRSS:/ { print $2 }' "/proc/$VIDGATE_PID/status")
fi

# --- report --------------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# median ARRAY_NAME TARGET: the median over the rounds (the value itself for one round).
median() {
    local -n arr=$1
    local r
    for r in $(seq "$ROUNDS"); do echo "${arr[$2:$r]}"; done | sort -g |
        awk '{ v[NR] = $1 } END { printf "%s", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
declare -A M_RPS M_P99 M_CPU M_ERRS
for name in "${TARGETS[@]}"; do
    M_RPS[$name]=$(median RPS "$name")
    M_P99[$name]=$(median P99 "$name")
    M_CPU[$name]=$(median CPU "$name")
    M_ERRS[$name]=$(for r in $(seq "$ROUNDS"); do echo "${ERRS[$name:$r]}"; done | awk '{ n += $1 } END { print n }')
done

echo
rounds="1 round"
((ROUNDS > 1)) && rounds="$ROUNDS interleaved rounds, medians"
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency, ${WARMUP}s warm-up, $rounds;"
echo "4 KiB file; $(nproc) CPUs; $(nginx -v 2>&1 | sed 's/.*: //'); origin $ORIGIN_WORKERS worker," \
    "secure_link nginx 2 workers; $(date -u +%F)"
# The numbers are only as quiet as the machine: show how busy it was.
echo "load average before the runs: $LOAD_BEFORE"
echo
echo "| target | req/s | p99 (ms) | ratio vs nginx | ratio vs direct origin | errors | CPU µs/req |"
echo "|---|---:|---:|---:|---:|---:|---:|"
declare -A LABEL=([origin]="direct origin (nginx static)" [nginx]="nginx secure_link -> origin"
    [vidgate]="vidgate (server token + session, memory) -> origin")
for name in "${TARGETS[@]}"; do
    printf '| %s | %.0f | %.2f | %s | %s | %s | %.1f |\n' "${LABEL[$name]}" "${M_RPS[$name]}" "${M_P99[$name]}" \
        "$(ratio "${M_RPS[$name]}" "${M_RPS[nginx]}")" "$(ratio "${M_RPS[$name]}" "${M_RPS[origin]}")" \
        "${M_ERRS[$name]}" "${M_CPU[$name]}"
done
echo
echo "errors: non-2xx answers + socket errors (must be 0). CPU µs/req: user+system time of the"
echo "server wrk talks to (origin: its worker; nginx: its 2 workers, origin not counted; vidgate:"
echo "the process, origin not counted) over the measured run, divided by the requests served."
if ((ROUNDS > 1)); then
    echo
    for r in $(seq "$ROUNDS"); do
        line="round $r:"
        for name in "${TARGETS[@]}"; do line+=" $name $(printf '%.0f' "${RPS[$name:$r]}")/s"; done
        [[ $SKIP_VIDGATE != 1 ]] && line+=" (vidgate/nginx $(ratio "${RPS[vidgate:$r]}" "${RPS[nginx:$r]}"))"
        echo "$line"
    done
fi
if [[ -n ${HWM:-} ]]; then
    echo
    echo "vidgate peak RSS (VmHWM): $((HWM / 1024)) MiB ($HWM kB); RSS after the run: $((RSS / 1024)) MiB"
fi

# --- optional profile: where vidgate's CPU goes (flat, self time by symbol) -----------------------
if [[ $PERF == 1 && $SKIP_VIDGATE != 1 ]]; then
    log "perf: profiling vidgate during one more ${DURATION}s wrk run"
    perf record -q -e cpu-clock -F 999 -p "$VIDGATE_PID" -o "$TMP/perf.data" -- sleep "$DURATION" 2>/dev/null &
    perf_pid=$!
    timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$VIDGATE_URL" >/dev/null
    wait "$perf_pid" || true
    # perf pads its lines to a wide screen: drop comments, blank lines and trailing blanks.
    report() { perf report -i "$TMP/perf.data" --no-children --stdio "$@" 2>/dev/null |
        grep -v -e '^#' -e '^$' | sed 's/ *$//'; }
    echo
    echo "vidgate's CPU by binary (kernel = the TCP work of its syscalls):"
    report --sort dso | head -5
    echo
    echo "vidgate's top symbols (self CPU, all threads):"
    report --sort dso,symbol | head -40
fi
