# Shared by the end-to-end scripts (strongswan.sh, route_based.sh, agent_crash.sh): paths,
# messages, packages, the processes a script starts (and stops by PID only),
# charon in a network namespace, and a vpnaas server on 127.0.0.1.
#
# Source it after `set -euo pipefail` with E2E_NAME set (the message prefix).
# It defines ROOT, VPNAAS_BIN, PYTHON and START_NS; a script sets BASE and
# PIDFILE before calling remember/stop_pids/start_charon/start_server.

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT="$(pwd)"
VPNAAS_BIN="${VPNAAS_BIN:-$ROOT/target/ci/vpnaas}"
case "$VPNAAS_BIN" in /*) ;; *) VPNAAS_BIN="$ROOT/$VPNAAS_BIN" ;; esac
PYTHON="${E2E_PYTHON:-$ROOT/.venv-test/bin/python}"
START_NS=$(date +%s%N)

log() { printf '%s: %s\n' "$E2E_NAME" "$*"; }
die() { printf '%s: error: %s\n' "$E2E_NAME" "$*" >&2; exit 1; }

# needs_root_and_python MODULE: the preconditions every e2e script has.
needs_root_and_python() {
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces, charon)"
    [ -x "$VPNAAS_BIN" ] || die "no vpnaas binary at $VPNAAS_BIN (build it, or set VPNAAS_BIN)"
    "$PYTHON" -c "import $1" 2>/dev/null \
        || die "$PYTHON has no $1 (run scripts/test.sh to create .venv-test, or set E2E_PYTHON)"
}

# install_packages PKG...: Debian packages, installed only when missing.
install_packages() {
    if ! dpkg -s "$@" >/dev/null 2>&1; then
        log "installing $*"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
    fi
}

remember() { # pid comm
    echo "$1 $2" >> "$PIDFILE"
}

# Newest first (agents, then the server), charons last: agents never see charon
# vanish. Only a process we started is signalled (a PID may have been reused).
stop_pids() {
    local pass pid comm
    for pass in others charon; do
        while read -r pid comm; do
            [ -n "$pid" ] || continue
            if [ "$pass" = charon ] && [ "$comm" != charon ]; then continue; fi
            if [ "$pass" = others ] && [ "$comm" = charon ]; then continue; fi
            [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$comm" ] || continue
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do
                [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$comm" ] || break
                sleep 0.1
            done
            if [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$comm" ]; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done < <(tac "$PIDFILE")
    done
}

# show_logs FILE...: the tail of each existing file (after a failure).
show_logs() {
    local f
    for f in "$@"; do
        [ -f "$f" ] || continue
        printf '\n----- %s (last 40 lines)\n' "$f"
        tail -n 40 "$f"
    done
}

# elapsed: seconds since the script started, e.g. 12.345
elapsed() {
    local ms
    ms=$(( ($(date +%s%N) - START_NS) / 1000000 ))
    printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# two_sites NSA NSB: the two-site network of strongswan.sh and route_based.sh,
# in namespaces of their own (recorded in NS_MADE for end_two_sites): a veth
# pair 198.18.0.1/30 (A) <-> 198.18.0.2/30 (B), and each site's protected host
# on lo (this kernel has no dummy interfaces), 198.19.1.1 (A) and 198.19.2.1 (B).
two_sites() {
    local a=$1 b=$2
    ip netns add "$a"; NS_MADE+=("$a")
    ip netns add "$b"; NS_MADE+=("$b")
    # veth created directly inside the namespaces: nothing appears on the host.
    ip link add vethA netns "$a" type veth peer name vethB netns "$b"
    ip -n "$a" addr add 198.18.0.1/30 dev vethA
    ip -n "$b" addr add 198.18.0.2/30 dev vethB
    ip -n "$a" addr add 198.19.1.1/32 dev lo
    ip -n "$b" addr add 198.19.2.1/32 dev lo
    ip -n "$a" link set lo up
    ip -n "$b" link set lo up
    ip -n "$a" link set vethA up
    ip -n "$b" link set vethB up
}

# end_two_sites RC: the EXIT trap's work for a two-site script: stop what it
# started, delete its namespaces, show the logs after a failure, remove BASE
# (unless E2E_KEEP=1) and print the one-line result; exits with RC.
end_two_sites() {
    local rc=$1
    set +e
    stop_pids
    for ns in "${NS_MADE[@]}"; do ip netns del "$ns" 2>/dev/null; done
    if [ "$rc" != 0 ]; then
        show_logs "$BASE"/server.log "$BASE"/agent-a.log "$BASE"/agent-b.log "$BASE"/a/charon.log "$BASE"/b/charon.log
    fi
    if [ "${E2E_KEEP:-0}" = 1 ]; then log "kept $BASE"; else rm -rf "$BASE"; fi
    if [ "$rc" = 0 ]; then log "1 passed, 0 failed ($(elapsed)s)"; else log "0 passed, 1 failed ($(elapsed)s)"; fi
    exit "$rc"
}

# write_charon_conf DIR: strongswan.conf for a charon with its VICI socket and
# log in DIR. Userspace ESP (kernel-libipsec): this machine's kernel has no ESP.
write_charon_conf() {
    local d=$1
    mkdir -p "$d/run" "$d/swanctl"
    cat > "$d/strongswan.conf" <<EOF
charon {
  load_modular = no
  load = random nonce openssl aes sha1 sha2 hmac gcm gmp pem pkcs1 x509 pubkey kdf kernel-libipsec kernel-netlink socket-default vici
  plugins { vici { socket = unix://$d/charon.vici } }
  filelog { main { path = $d/charon.log
                   time_format = %T
                   append = yes
                   flush_line = yes
                   default = 1
                   ike = 2
                   cfg = 2 } }
}
swanctl { load = random nonce openssl aes sha1 sha2 hmac pem pkcs1 x509 pubkey }
EOF
}

# start_charon NS DIR: charon hard-codes /var/run/charon.pid, so each gets a
# private /run, bind-mounted inside the mount namespace `ip netns exec` creates
# (it doesn't leak to the host). `ip` execs sh which execs charon, so $! is
# charon's PID.
start_charon() {
    local ns=$1 d=$2
    rm -f "$d/charon.vici"
    ip netns exec "$ns" sh -c "mount --bind $d/run /run && exec env STRONGSWAN_CONF=$d/strongswan.conf /usr/lib/ipsec/charon" \
        >>"$d/charon.stdout" 2>&1 </dev/null &
    remember $! charon
    for _ in $(seq 100); do [ -S "$d/charon.vici" ] && return 0; sleep 0.05; done
    die "charon in $ns did not open $d/charon.vici"
}

# start_server SCHEME [serve flags...]: `vpnaas serve` on 127.0.0.1 (port chosen
# by the kernel) on $BASE/vpnaas.db, logs in $BASE/server.{out,log}; sets DB
# and URL once it listens with SCHEME (http or https). The admin password is
# $VPNAAS_ADMIN_PASSWORD.
start_server() {
    local scheme=$1
    shift
    DB="$BASE/vpnaas.db"
    VPNAAS_LOG="${VPNAAS_LOG:-info}" \
        "$VPNAAS_BIN" --db "$DB" serve --listen 127.0.0.1:0 "$@" \
        >"$BASE/server.out" 2>"$BASE/server.log" </dev/null &
    remember $! vpnaas
    URL=""
    for _ in $(seq 300); do
        URL=$(sed -n "s/^vpnaas listening on \\($scheme:\\/\\/127\\.0\\.0\\.1:[0-9]*\\).*/\\1/p" "$BASE/server.out" 2>/dev/null | head -1)
        [ -n "$URL" ] && break
        sleep 0.1
    done
    [ -n "$URL" ] || die "server did not start (or not on $scheme)"
    log "server at $URL"
}

# A random admin password for a throwaway server.
random_password() { # prefix
    echo "$1-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
}
