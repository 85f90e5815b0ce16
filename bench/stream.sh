#!/usr/bin/env bash
# Streaming benchmark: one large file (2 GiB by default) downloaded with curl, directly from the
# origin and through vidgate, in the same run. The target (issue 5): through vidgate, throughput
# >= 0.8x the direct origin's and vidgate's peak RSS <= 64 MiB.
#
# What runs, all on 127.0.0.1:
#   origin   nginx (1 worker, sendfile on) serving the file as /v1/videos/big/stream.mp4
#   nginx    an anchor: nginx (2 workers) proxy_pass to the origin, no checks, buffers in memory
#            only (16 x 64k, proxy_max_temp_file_size 0): what a mature C proxy that reads and
#            writes the bytes gets on this machine (SKIP_NGINX=1 leaves it out)
#   vidgate  vidgate serve (memory store) in front of the origin; a server token with
#            grants {"read": {"resources": ["big"]}} (no session), created with the admin API
# and then, with curl writing to /dev/null:
#   1. one download through vidgate, untimed: status 200, every byte equal to the file (SHA-256);
#      it also warms the paths up;
#   2. ROUNDS rounds of one download each directly, through nginx and through vidgate, the order
#      rotating from round to round: MB/s of each (MB = 10^6 bytes), the ratios to direct, medians;
#   3. CONCURRENT simultaneous downloads, directly, through nginx, through vidgate: aggregate MB/s;
#   4. a Range request for the second half (bytes=SIZE/2-, 1 GiB by default) through vidgate:
#      206, the right Content-Range, the right number of bytes and the right bytes;
#   5. a slow viewer: one download through vidgate read at SLOW_RATE for SLOW_SECONDS.
# vidgate's memory comes from /proc/<pid>/status: VmRSS at idle, VmHWM (peak RSS) after the
# first download, then, with the peak reset before each phase (`echo 5 > /proc/<pid>/clear_refs`),
# VmHWM over the timed single downloads, over the concurrent ones and over the slow viewer.
#
# The file is random bytes (/dev/urandom): nothing on the way can compress it or find it
# cheaply. It is written to a temp dir in /tmp (on disk: flushed with sync, then served from the
# page cache), or in /dev/shm (tmpfs: the same page cache, no disk) when /tmp has no room for it;
# DATA_DIR chooses. Either way the origin reads RAM; SIZE_MIB of free memory are needed.
#
# A guard: if vidgate's RSS passes RSS_ABORT_MIB while a download runs through it, the downloads
# are stopped and reported as aborted (a gateway that buffers whole responses must not exhaust a
# shared machine's memory).
#
# Usage (from anywhere, as root or with nginx/curl/openssl/python3 already installed):
#   bench/stream.sh
#   ROUNDS=5 bench/stream.sh
# Env: ROUNDS (3), SIZE_MIB (2048), CONCURRENT (4), MAX_TIME (seconds a download may take, 300),
#      DATA_DIR (where the temp dir goes: /tmp, else /dev/shm if /tmp lacks SIZE_MIB + 1 GiB),
#      RSS_ABORT_MIB (4096: stop the downloads through vidgate when its RSS passes this),
#      SLOW_RATE (20M: curl --limit-rate of the slow viewer), SLOW_SECONDS (5: how long it reads),
#      SKIP_NGINX=1 (no nginx proxy anchor),
#      VIDGATE=/path/to/binary (bench that build instead of building target/release/vidgate),
#      PERF=1 (after the table, profile vidgate with perf, DWARF call graphs, during one more
#      download through it: CPU by binary, top symbols, user-space functions with their callees;
#      PERF_DATA=/path/perf.data keeps the profile, otherwise it goes with the temp dir).
# Space: SIZE_MIB in DATA_DIR. Time: about 1.5 minutes at 2 GiB and ROUNDS=3 on 2 cores, plus the build.
# All traffic goes to 127.0.0.1; every process it starts is killed and the file removed on exit.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SIZE_MIB=${SIZE_MIB:-2048}
CONCURRENT=${CONCURRENT:-4}
MAX_TIME=${MAX_TIME:-300}
SLOW_RATE=${SLOW_RATE:-20M}
SLOW_SECONDS=${SLOW_SECONDS:-5}
RSS_ABORT_MIB=${RSS_ABORT_MIB:-4096}
PERF=${PERF:-0}
SKIP_NGINX=${SKIP_NGINX:-0}
SIZE=$((SIZE_MIB * 1024 * 1024))
# The Range variant asks for the second half: bytes=1073741824- (the last GiB) at 2 GiB.
RANGE_START=$((SIZE / 2))
VIDEO_PATH=/v1/videos/big/stream.mp4

cd "$(dirname "$0")/.."
ROOT=$(pwd)

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'stream.sh: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------------
missing=()
for tool in nginx openssl curl python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[[ $PERF == 1 ]] && ! command -v perf >/dev/null 2>&1 && missing+=(linux-perf)
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [[ -z ${VIDGATE:-} ]]; then
    VIDGATE="$ROOT/target/release/vidgate"
    log "cargo build --release"
    cargo build --release --quiet
fi
"$VIDGATE" serve --help >/dev/null 2>&1 || die "$VIDGATE has no working 'serve' command"

# --- temp dir, cleanup -------------------------------------------------------------------------
# avail_kib DIR: free space in DIR, kB.
avail_kib() { df -Pk "$1" | awk 'NR == 2 { print $4 }'; }
if [[ -z ${DATA_DIR:-} ]]; then
    DATA_DIR=/tmp
    if (($(avail_kib /tmp) < SIZE / 1024 + 1024 * 1024)) && [[ -d /dev/shm ]]; then
        DATA_DIR=/dev/shm
        log "/tmp has less than $SIZE_MIB MiB + 1 GiB free: the file goes to /dev/shm (tmpfs)"
    fi
fi
(($(avail_kib "$DATA_DIR") > SIZE / 1024 + 1024 * 1024)) || die "not enough space in $DATA_DIR for $SIZE_MIB MiB plus 1 GiB"
mem_kib=$(awk '$1 == "MemAvailable:" { print $2 }' /proc/meminfo)
((mem_kib > SIZE / 1024 + RSS_ABORT_MIB * 1024)) ||
    die "MemAvailable $((mem_kib / 1024)) MiB: less than the file ($SIZE_MIB MiB) plus RSS_ABORT_MIB ($RSS_ABORT_MIB)"
TMP=$(mktemp -d "$DATA_DIR/vidgate-stream.XXXXXX")
chmod 755 "$TMP" # nginx workers run as an unprivileged user and must read the file
PIDS=()          # long-lived: nginx, vidgate, perf
CURLS=()         # downloads running in the background
HASHER=""       # the sha256 reading a download, if one runs
cleanup() {
    local pid
    for pid in "${CURLS[@]}" ${HASHER:+"$HASHER"} "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${CURLS[@]}" ${HASHER:+"$HASHER"} "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
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

# wait_http URL CODE: poll until URL answers CODE (10 s at most).
wait_http() {
    local i
    for i in $(seq 100); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$1" || true) == "$2" ]] && return 0
        sleep 0.1
    done
    return 1
}
# status URL: the HTTP status code of a GET whose body is not read.
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1"; }
# sha256: the hex SHA-256 of stdin.
sha256() { openssl dgst -sha256 -r | cut -d' ' -f1; }

# --- the file ----------------------------------------------------------------------------------
WWW="$TMP/origin/www"
FILE="$WWW$VIDEO_PATH"
mkdir -p "$(dirname "$FILE")" "$TMP/origin/tmp"
log "writing $SIZE_MIB MiB of random bytes to $FILE"
FILE_SHA=$(head -c "$SIZE" /dev/urandom | tee "$FILE" | sha256)
# The SHA-256 of the second half, for the Range check.
RANGE_SHA=$(tail -c +$((RANGE_START + 1)) "$FILE" | sha256)
# Written back now, so that no writeback competes with the downloads; it stays in the page cache.
sync "$FILE"
chmod -R a+rX "$WWW"

# --- (1) origin: nginx serving the file with sendfile ------------------------------------------
# nginx_conf WORKERS: the settings both nginx instances share, up to the http block's servers.
nginx_conf() {
    cat <<EOF
worker_processes $1;
daemon off;
pid nginx.pid;
error_log error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
EOF
}
# start_nginx NAME: run nginx in the foreground with $TMP/NAME/nginx.conf, prefix $TMP/NAME.
start_nginx() {
    nginx -p "$TMP/$1/" -c "$TMP/$1/nginx.conf" -e "$TMP/$1/error.log" &
    PIDS+=($!)
}
cat >"$TMP/origin/nginx.conf" <<EOF
$(nginx_conf 1)
    sendfile on;
    tcp_nopush on;
    server {
        listen 127.0.0.1:$P_ORIGIN;
        root $WWW;
    }
}
EOF
start_nginx origin
ORIGIN_PID=$!
DIRECT_URL="http://127.0.0.1:$P_ORIGIN$VIDEO_PATH"
wait_http "$DIRECT_URL" 200 || die "origin did not start: $(cat "$TMP/origin/error.log")"
log "origin up on :$P_ORIGIN (1 worker, sendfile on)"

# --- (1b) the anchor: nginx proxying to the origin, buffers in memory only -----------------------
if [[ $SKIP_NGINX != 1 ]]; then
    mkdir -p "$TMP/nginx/tmp"
    cat >"$TMP/nginx/nginx.conf" <<EOF
$(nginx_conf 2)
    upstream origin {
        server 127.0.0.1:$P_ORIGIN;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$P_NGINX;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffers 16 64k;
            proxy_busy_buffers_size 128k;
            proxy_max_temp_file_size 0;
        }
    }
}
EOF
    start_nginx nginx
    NGINX_PID=$!
    NGINX_URL="http://127.0.0.1:$P_NGINX$VIDEO_PATH"
    wait_http "$NGINX_URL" 200 || die "nginx proxy did not start: $(cat "$TMP/nginx/error.log")"
    log "nginx proxy up on :$P_NGINX (2 workers)"
fi

# --- (2) vidgate: a server token that reads "big", memory store ---------------------------------
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
ADMIN="http://127.0.0.1:$P_ADMIN"
PROXY="http://127.0.0.1:$P_PROXY"
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
# start_vidgate: run vidgate, wait for it, create the token (the store is in memory, so a new
# process needs a new one); sets VIDGATE_PID, TOKEN and VIDGATE_URL.
start_vidgate() {
    RUST_LOG=warn "$VIDGATE" serve --config "$TMP/vidgate/vidgate.toml" >>"$TMP/vidgate/log" 2>&1 &
    VIDGATE_PID=$!
    PIDS+=("$VIDGATE_PID")
    wait_http "$ADMIN/healthz" 200 || die "vidgate did not start: $(cat "$TMP/vidgate/log")"
    TOKEN=$(curl -sf --max-time 5 -u bench:bench-key -H 'content-type: application/json' \
        -d '{"grants": {"read": {"resources": ["big"]}}}' \
        "$ADMIN/v1/authtokens" | json_field token) || die "could not create a token"
    VIDGATE_URL="$PROXY$VIDEO_PATH?server_auth=$TOKEN"
}
# restart_if_aborted: after a phase the guard stopped, a fresh vidgate for the next one (the
# old one may keep the memory it grew: allocators do not always hand it back when idle).
NEED_RESTART=0
RESTARTS=0
restart_if_aborted() {
    ((NEED_RESTART)) || return 0
    local old=$VIDGATE_PID pid kept=()
    kill "$old" 2>/dev/null || true
    wait "$old" 2>/dev/null || true
    for pid in "${PIDS[@]}"; do [[ $pid == "$old" ]] || kept+=("$pid"); done
    PIDS=("${kept[@]}")
    start_vidgate
    URL[vidgate]=$VIDGATE_URL
    PID[vidgate]=$VIDGATE_PID
    NEED_RESTART=0
    RESTARTS=$((RESTARTS + 1))
    log "vidgate restarted after the aborted phase (RSS $(mib "$(kib VmRSS)") MiB)"
}
declare -A URL PID
start_vidgate
code=$(status "$PROXY$VIDEO_PATH")
[[ $code == 401 ]] || die "vidgate: no token gave $code, not 401"
code=$(status "$PROXY/v1/videos/other/stream.mp4?server_auth=$TOKEN")
[[ $code == 403 ]] || die "vidgate: a video the token does not grant gave $code, not 403"
log "vidgate up on :$P_PROXY (no token 401, other video 403)"

# kib FIELD: a field of vidgate's /proc status, in kB (VmRSS, VmHWM).
kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$VIDGATE_PID/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
IDLE_RSS=$(kib VmRSS)

# cpu_ticks PID: user+system clock ticks used so far by PID and its children (nginx's worker).
cpu_ticks() {
    local p t=0
    for p in "$1" $(ps -o pid= --ppid "$1"); do
        t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
    done
    echo "$t"
}
CLK_TCK=$(getconf CLK_TCK)
# cpu_total: "busy total" clock ticks of the whole machine so far (all CPUs; busy = not idle or
# iowait). Its share over a download says whether the 2 CPUs were the limit.
cpu_total() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t }' /proc/stat; }
secs() { awk -v t="$1" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }'; }

# --- downloads, guarded ---------------------------------------------------------------------------
# rss_kib: vidgate's VmRSS in kB, read with builtins only (it is polled during the downloads).
rss_kib() {
    local key value _
    while read -r key value _; do
        [[ $key == VmRSS: ]] && { echo "$value"; return; }
    done <"/proc/$VIDGATE_PID/status"
    echo 0
}
ABORTED=()   # one line per phase whose downloads were stopped by the guard
PEAK_SEEN=0  # the highest VmRSS polled (kB), a check on VmHWM
# await PHASE PID...: wait for these downloads, polling vidgate's RSS every 0.25 s; if it passes
# RSS_ABORT_MIB, stop them (by their ids), note it in ABORTED and return 2. Returns 1 if a
# download failed otherwise, 0 if all succeeded.
await() {
    local phase=$1 pid alive rss rc=0 stopped=0
    shift
    CURLS=("$@")
    while :; do
        alive=0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        rss=$(rss_kib)
        ((rss > PEAK_SEEN)) && PEAK_SEEN=$rss
        if ((rss > RSS_ABORT_MIB * 1024 && !stopped)); then
            stopped=1
            ABORTED+=("$phase: stopped when vidgate's RSS reached $((rss / 1024)) MiB (> RSS_ABORT_MIB=$RSS_ABORT_MIB)")
            NEED_RESTART=1
            log "ABORTED ${ABORTED[-1]}"
            for pid in "$@"; do kill "$pid" 2>/dev/null || true; done
        fi
        sleep 0.25
    done
    for pid in "$@"; do wait "$pid" || rc=1; done
    CURLS=()
    ((stopped)) && return 2
    return $rc
}
# fetch_hashed PHASE URL HEAD_FILE [CURL_ARGS...]: download URL (response head to HEAD_FILE),
# guarded by await; the SHA-256 of the body goes to $TMP/body.sha. The body goes through a fifo
# so that the downloading process is curl itself, whose id await can watch. (Not to be called in
# a command substitution: await's findings must reach this shell.)
fetch_hashed() {
    local phase=$1 url=$2 head=$3 curl_pid fd rc=0
    shift 3
    rm -f "$TMP/pipe" "$TMP/body.sha" && mkfifo "$TMP/pipe"
    sha256 <"$TMP/pipe" >"$TMP/body.sha" &
    HASHER=$!
    curl -s --max-time "$MAX_TIME" -D "$head" -o "$TMP/pipe" "$@" "$url" &
    curl_pid=$!
    await "$phase" "$curl_pid" || rc=$?
    # curl opens its output only with the first byte: if it never got one, the hasher is still
    # waiting to open the fifo. Opening it read-write never blocks, and closing it gives EOF.
    exec {fd}<>"$TMP/pipe"
    exec {fd}>&-
    wait "$HASHER" || ((rc)) || rc=1
    HASHER=""
    return $rc
}
# reset_hwm: set vidgate's peak RSS back to its current RSS, so that the next VmHWM is the next
# phase's own (Linux: "5" in clear_refs). Sets HWM_RESET (1 if it worked) and BASE_RSS.
reset_hwm() {
    restart_if_aborted
    if echo 5 >"/proc/$VIDGATE_PID/clear_refs" 2>/dev/null; then HWM_RESET=1; else HWM_RESET=0; fi
    BASE_RSS=$(kib VmRSS)
}
# header NAME FILE: a header's value from a saved response head.
header() { awk -F': ' -v n="$1" 'tolower($1) == n { sub(/\r$/, "", $2); print $2 }' "$2"; }

# --- (3) correctness through vidgate (untimed; also the warm-up) --------------------------------
log "verifying one download through vidgate (status, size, SHA-256)"
rc=0
fetch_hashed "the verification download" "$VIDGATE_URL" "$TMP/verify.head" || rc=$?
((rc != 2)) || die "${ABORTED[-1]}"
got=$(cat "$TMP/body.sha")
code=$(awk 'NR == 1 { print $2 }' "$TMP/verify.head")
[[ $code == 200 ]] || die "vidgate: the download answered ${code:-nothing}, not 200"
[[ $got == "$FILE_SHA" ]] || die "vidgate: the bytes differ from the file (sha256 $got, file $FILE_SHA)"
# Warm the other paths alike.
curl -s -o /dev/null --max-time "$MAX_TIME" "$DIRECT_URL"
[[ $SKIP_NGINX != 1 ]] && curl -s -o /dev/null --max-time "$MAX_TIME" "$NGINX_URL"
log "through vidgate: 200, $SIZE bytes, sha256 equal to the file's"
# Peak and current RSS now, after one download through vidgate (and nothing else).
FIRST_HWM=$(kib VmHWM)
FIRST_RSS=$(kib VmRSS)

# --- (4) single downloads, the order rotating ----------------------------------------------------
TARGETS=(direct)
[[ $SKIP_NGINX != 1 ]] && TARGETS+=(nginx)
TARGETS+=(vidgate)
URL=([direct]=$DIRECT_URL [nginx]=${NGINX_URL:-} [vidgate]=$VIDGATE_URL)
# Whose CPU is counted per download: the proxy's (nginx's workers, vidgate), the origin's apart.
PID=([direct]=$ORIGIN_PID [nginx]=${NGINX_PID:-} [vidgate]=$VIDGATE_PID)
declare -A MBPS SECS CPU_P CPU_O BUSY # keyed "target:round"
# download NAME ROUND: one timed download to /dev/null; keeps MB/s, the CPU seconds the proxy
# (none for direct) and the origin spent on it, and how busy the machine was. An aborted
# download counts 0 MB/s.
download() {
    local name=$1 key="$1:$2" p0 p1 o0 o1 b0 b1 t0 t1 code bytes speed seconds rc=0
    restart_if_aborted
    p0=$(cpu_ticks "${PID[$name]}")
    o0=$(cpu_ticks "$ORIGIN_PID")
    read -r b0 t0 < <(cpu_total)
    curl -s -o /dev/null --max-time "$MAX_TIME" -w '%{http_code} %{size_download} %{speed_download} %{time_total}\n' \
        "${URL[$name]}" >"$TMP/single.out" &
    await "round $2, $name" $! || rc=$?
    if ((rc == 2)); then
        MBPS[$key]=0 SECS[$key]=- CPU_P[$key]=- CPU_O[$key]=- BUSY[$key]=-
        return
    fi
    ((rc == 0)) || die "$name: curl failed (round $2)"
    read -r b1 t1 < <(cpu_total)
    p1=$(cpu_ticks "${PID[$name]}")
    o1=$(cpu_ticks "$ORIGIN_PID")
    read -r code bytes speed seconds <"$TMP/single.out"
    [[ $code == 200 ]] || die "$name: status $code, not 200 (round $2)"
    [[ $bytes == "$SIZE" ]] || die "$name: $bytes bytes, not $SIZE (round $2)"
    MBPS[$key]=$(awk -v s="$speed" 'BEGIN { printf "%.0f", s / 1e6 }')
    SECS[$key]=$seconds
    CPU_O[$key]=$(secs $((o1 - o0)))
    if [[ $name == direct ]]; then CPU_P[$key]=-; else CPU_P[$key]=$(secs $((p1 - p0))); fi
    BUSY[$key]=$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.0f", (t > 0 ? 100 * b / t : 0) }')
    log "round $2/$ROUNDS $name: ${MBPS[$key]} MB/s (${seconds}s; CPU proxy ${CPU_P[$key]}s, origin ${CPU_O[$key]}s; machine busy ${BUSY[$key]}%; vidgate RSS $(mib "$(kib VmRSS)") MiB)"
}

reset_hwm
SINGLE_BASE=$BASE_RSS
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for round in $(seq "$ROUNDS"); do
    # The order rotates, so that no target always follows the same one.
    n=${#TARGETS[@]}
    for i in $(seq 0 $((n - 1))); do download "${TARGETS[$(((i + round - 1) % n))]}" "$round"; done
done
SINGLE_HWM=$(kib VmHWM)
SINGLE_RSS=$(kib VmRSS)

# --- (5) concurrent downloads -------------------------------------------------------------------
# concurrent NAME URL: CONCURRENT downloads at once; keeps the aggregate MB/s: all bytes over the
# longest download's time (they start within milliseconds of each other).
declare -A AGG
concurrent() {
    local name=$1 url=$2 i pids=() code bytes seconds total=0 longest=0 rc=0
    restart_if_aborted
    [[ $name == vidgate ]] && url=$VIDGATE_URL
    for i in $(seq "$CONCURRENT"); do
        curl -s -o /dev/null --max-time "$MAX_TIME" -w '%{http_code} %{size_download} %{time_total}\n' \
            "$url" >"$TMP/conc.$i" &
        pids+=($!)
    done
    await "$CONCURRENT concurrent $name downloads" "${pids[@]}" || rc=$?
    if ((rc == 2)); then
        AGG[$name]=0
        return
    fi
    ((rc == 0)) || die "$name: a concurrent download failed"
    for i in $(seq "$CONCURRENT"); do
        read -r code bytes seconds <"$TMP/conc.$i"
        [[ $code == 200 && $bytes == "$SIZE" ]] || die "$name: concurrent download $i: status $code, $bytes bytes"
        total=$((total + bytes))
        longest=$(awk -v a="$longest" -v b="$seconds" 'BEGIN { print (b > a ? b : a) }')
    done
    AGG[$name]=$(awk -v b="$total" -v s="$longest" 'BEGIN { printf "%.0f", b / s / 1e6 }')
    log "$CONCURRENT concurrent $name: ${AGG[$name]} MB/s together (the last done in ${longest}s)"
}
concurrent direct "$DIRECT_URL"
[[ $SKIP_NGINX != 1 ]] && concurrent nginx "$NGINX_URL"
reset_hwm
CONC_BASE=$BASE_RSS
concurrent vidgate "$VIDGATE_URL"
CONC_HWM=$(kib VmHWM)

# --- (6) Range: the second half through vidgate -------------------------------------------------
log "Range: bytes=$RANGE_START- through vidgate"
restart_if_aborted
rc=0
fetch_hashed "the Range download" "$VIDGATE_URL" "$TMP/range.head" -H "Range: bytes=$RANGE_START-" || rc=$?
if ((rc != 2)); then
    RANGE_CODE=$(awk 'NR == 1 { print $2 }' "$TMP/range.head")
    RANGE_CR=$(header content-range "$TMP/range.head")
    RANGE_LEN=$(header content-length "$TMP/range.head")
    got=$(cat "$TMP/body.sha")
    [[ $RANGE_CODE == 206 ]] || die "Range: status ${RANGE_CODE:-nothing}, not 206"
    [[ $RANGE_CR == "bytes $RANGE_START-$((SIZE - 1))/$SIZE" ]] || die "Range: Content-Range '$RANGE_CR'"
    [[ $RANGE_LEN == $((SIZE - RANGE_START)) ]] || die "Range: Content-Length '$RANGE_LEN'"
    [[ $got == "$RANGE_SHA" ]] || die "Range: the bytes differ from the file's second half"
    RANGE_OK="206, Content-Range: $RANGE_CR, $RANGE_LEN bytes, sha256 equal to the file's"
    log "Range: $RANGE_OK"
fi

# --- (7) a slow viewer: one download through vidgate read at SLOW_RATE for SLOW_SECONDS ----------
# A player on a slower link than the origin's. A proxy with backpressure holds about its buffers
# (well under a MiB per stream) however slow the reader; one without buffers what the origin
# sends faster than the viewer reads.
reset_hwm
SLOW_BASE=$BASE_RSS
log "slow viewer: --limit-rate $SLOW_RATE for ${SLOW_SECONDS}s through vidgate"
curl -s -o /dev/null --limit-rate "$SLOW_RATE" --max-time "$SLOW_SECONDS" -w '%{http_code} %{size_download}\n' \
    "$VIDGATE_URL" >"$TMP/slow.out" &
rc=0
await "the slow viewer" $! || rc=$?
SLOW_HWM=$(kib VmHWM)
read -r SLOW_CODE SLOW_BYTES <"$TMP/slow.out" || true
# curl stops itself at --max-time (exit 28): that is the plan, not a failure.
((rc == 2)) || [[ $SLOW_CODE == 200 ]] || die "slow viewer: status ${SLOW_CODE:-nothing}, not 200"
log "slow viewer: read $((SLOW_BYTES / 1000000)) MB; vidgate's peak RSS $(mib "$SLOW_HWM") MiB"

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
FINAL_HWM=$(kib VmHWM)

# --- report --------------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { printf "%s", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
met() { if awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; then echo yes; else echo no; fi; }
# median_of NAME: the median MB/s of a target over the rounds.
median_of() { for r in $(seq "$ROUNDS"); do echo "${MBPS[$1:$r]:-0}"; done | median; }
declare -A RATIO RATIO_N
for r in $(seq "$ROUNDS"); do
    RATIO[$r]=$(ratio "${MBPS[vidgate:$r]:-0}" "${MBPS[direct:$r]:-0}")
    [[ $SKIP_NGINX != 1 ]] && RATIO_N[$r]=$(ratio "${MBPS[nginx:$r]:-0}" "${MBPS[direct:$r]:-0}")
done
M_DIRECT=$(median_of direct)
M_VIDGATE=$(median_of vidgate)
M_RATIO=$(for r in $(seq "$ROUNDS"); do echo "${RATIO[$r]}"; done | median)
if [[ $SKIP_NGINX != 1 ]]; then
    M_NGINX=$(median_of nginx)
    M_RATIO_N=$(for r in $(seq "$ROUNDS"); do echo "${RATIO_N[$r]}"; done | median)
fi
# The peak over the whole run: VmHWM before the reset, after it, and what the polling saw.
PEAK=$FIRST_HWM
for v in "$SINGLE_HWM" "$CONC_HWM" "$SLOW_HWM" "$FINAL_HWM" "$PEAK_SEEN"; do ((v > PEAK)) && PEAK=$v; done
MEM_LIMIT=$((64 * 1024))
THROUGHPUT_MET=$(met "$M_RATIO" 0.8)
MEMORY_MET=$(met "$MEM_LIMIT" "$PEAK")

echo
echo "curl to /dev/null; $SIZE_MIB MiB of random bytes in $DATA_DIR (served from RAM); $ROUNDS round(s), the order"
echo "of ${TARGETS[*]} rotating; MB = 10^6 bytes. $(nproc) CPUs; $(nginx -v 2>&1 | sed 's/.*: //');"
echo "origin 1 worker, sendfile on; $(curl --version | head -1 | cut -d' ' -f1-2); $(date -u +%F)"
echo "load average before the runs: $LOAD_BEFORE; after: $LOAD_AFTER"
for line in "${ABORTED[@]}"; do echo "**ABORTED** $line; its figure is 0."; done
((RESTARTS)) && echo "vidgate was restarted $RESTARTS time(s), after each aborted phase; later figures are a fresh process's."
echo
echo "| round | direct MB/s | nginx proxy MB/s | vidgate MB/s | vidgate / direct | nginx / direct | CPU s: nginx proxy / vidgate | CPU s origin: direct / nginx / vidgate | machine busy: direct / nginx / vidgate |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for r in $(seq "$ROUNDS"); do
    printf '| %s | %s | %s | %s | %s | %s | %s / %s | %s / %s / %s | %s%% / %s%% / %s%% |\n' "$r" \
        "${MBPS[direct:$r]:--}" "${MBPS[nginx:$r]:--}" "${MBPS[vidgate:$r]:--}" "${RATIO[$r]}" "${RATIO_N[$r]:--}" \
        "${CPU_P[nginx:$r]:--}" "${CPU_P[vidgate:$r]:--}" \
        "${CPU_O[direct:$r]:--}" "${CPU_O[nginx:$r]:--}" "${CPU_O[vidgate:$r]:--}" \
        "${BUSY[direct:$r]:--}" "${BUSY[nginx:$r]:--}" "${BUSY[vidgate:$r]:--}"
done
printf '| median | %s | %s | %s | **%s** | %s | | | |\n' "$M_DIRECT" "${M_NGINX:--}" "$M_VIDGATE" "$M_RATIO" "${M_RATIO_N:--}"
echo
echo "| figure | target | measured | met? |"
echo "|---|---|---|---|"
echo "| throughput through vidgate / direct (median of the per-round ratios) | >= 0.8x | ${M_RATIO}x ($M_VIDGATE vs $M_DIRECT MB/s) | $THROUGHPUT_MET |"
echo "| vidgate peak RSS, whole run | <= 64 MiB | $(mib "$PEAK") MiB | $MEMORY_MET |"
echo "| vidgate RSS at idle (after start and the token) | | $(mib "$IDLE_RSS") MiB | |"
echo "| vidgate peak RSS after the first download (the SHA-256 check: read by openssl, slower than /dev/null; VmHWM, RSS after) | <= 64 MiB | $(mib "$FIRST_HWM") MiB (RSS $(mib "$FIRST_RSS") MiB) | $(met "$MEM_LIMIT" "$FIRST_HWM") |"
if ((HWM_RESET)); then since="VmHWM reset just before, at RSS"; else since="VmHWM not resettable here, so since the start; RSS before:"; fi
echo "| vidgate peak RSS, the $ROUNDS timed single downloads to /dev/null ($since $(mib "$SINGLE_BASE") MiB; RSS after: $(mib "$SINGLE_RSS") MiB) | <= 64 MiB | $(mib "$SINGLE_HWM") MiB | $(met "$MEM_LIMIT" "$SINGLE_HWM") |"
echo "| vidgate peak RSS, $CONCURRENT concurrent downloads ($since $(mib "$CONC_BASE") MiB) | <= 64 MiB | $(mib "$CONC_HWM") MiB | $(met "$MEM_LIMIT" "$CONC_HWM") |"
echo "| $CONCURRENT concurrent downloads together: direct / nginx proxy / vidgate | | ${AGG[direct]} / ${AGG[nginx]:--} / ${AGG[vidgate]} MB/s (vidgate $(ratio "${AGG[vidgate]}" "${AGG[direct]}")x, nginx $(ratio "${AGG[nginx]:-0}" "${AGG[direct]}")x of direct) | |"
echo "| vidgate peak RSS, 1 slow viewer ($SLOW_RATE/s for ${SLOW_SECONDS}s, $((${SLOW_BYTES:-0} / 1000000)) MB read; $since $(mib "$SLOW_BASE") MiB) | <= 64 MiB | $(mib "$SLOW_HWM") MiB | $(met "$MEM_LIMIT" "$SLOW_HWM") |"
echo "| Range bytes=$RANGE_START- through vidgate | 206, $((SIZE - RANGE_START)) bytes | ${RANGE_OK:-not run} | $([[ -n ${RANGE_OK:-} ]] && echo yes || echo -) |"
echo
echo "Every download: status 200 and exactly $SIZE bytes (checked); the first, through vidgate, had"
echo "the file's SHA-256. CPU s: user+system seconds the proxy (nginx's workers, vidgate) and the"
echo "origin's worker spent during that round's download; machine busy: the share of both CPUs' time"
echo "not idle meanwhile (curl, the origin, the proxy, anything else running). Peak RSS: VmHWM"
echo "of /proc/<pid>/status; the highest VmRSS polled every 0.25 s during the downloads was"
echo "$(mib "$PEAK_SEEN") MiB."

# --- optional profile: where vidgate's CPU goes during one download -------------------------------
if [[ $PERF == 1 ]]; then
    log "perf: profiling vidgate during one more download through it"
    restart_if_aborted
    PERF_DATA=${PERF_DATA:-$TMP/perf.data}
    perf record -q --call-graph dwarf,32768 -e cpu-clock -F 499 -p "$VIDGATE_PID" -o "$PERF_DATA" 2>/dev/null &
    perf_pid=$!
    PIDS+=("$perf_pid")
    sleep 0.5
    curl -s -o /dev/null --max-time "$MAX_TIME" "$VIDGATE_URL" &
    await "the profiled download" $! || true
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    # `head` closes the pipe early: not an error here.
    set +o pipefail
    # perf pads its lines to a wide screen and ends them with IPC columns this VM cannot fill:
    # drop comments, blank lines, those columns and trailing blanks.
    report() {
        perf report -i "$PERF_DATA" --stdio -g none "$@" 2>/dev/null | grep -v -e '^#' -e '^$' |
            sed -e 's/ *- *- *$//' -e 's/ *$//'
    }
    echo
    echo "vidgate's CPU during one download, by binary (kernel: the copies and TCP work of its system calls):"
    report --no-children --sort dso | head -5
    echo
    echo "vidgate's top symbols (self CPU, all threads):"
    report --no-children --sort dso,symbol | head -20
    echo
    echo "vidgate's user-space functions with all they call (children; the runtime's frames, 100%, left out):"
    report --children --sort symbol | grep -F '[.]' | grep -v '^ *100.00%' | head -30
    set -o pipefail
fi
