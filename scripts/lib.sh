# Shared helpers for scripts/*; source it, don't run it.

log() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# elapsed_since EPOCH_SECONDS -> "3m07s"
elapsed_since() {
    local s=$(($(date +%s) - $1))
    printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# as_root CMD... : runs CMD as root (directly, or through sudo).
as_root() {
    if ((EUID == 0)); then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root (or sudo) for: $*"
    fi
}

# apt_install PKG... : apt-get update, then install quietly, non-interactively.
apt_install() {
    log "installing Debian packages: $*"
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=120)
    as_root "${apt[@]}" update </dev/null >/dev/null ||
        die "apt-get update failed"
    as_root "${apt[@]}" install -y --no-install-recommends "$@" </dev/null >/dev/null ||
        die "apt-get install $* failed"
}

# ensure_postgres HOST PORT WAIT_SECONDS : starts the local cluster if it
# doesn't answer, then waits until it does.
ensure_postgres() {
    local host=$1 port=$2 wait=$3 version i
    command -v pg_isready >/dev/null || die "pg_isready not found: is PostgreSQL installed?"
    if pg_isready -q -h "$host" -p "$port"; then
        log "PostgreSQL is up on $host:$port"
        return 0
    fi
    version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
    [[ -n $version ]] || die "PostgreSQL is not running on $host:$port and no cluster is configured in /etc/postgresql"
    log "PostgreSQL $version is not running on $host:$port; starting it"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
        log "pg_ctlcluster $version main start failed; waiting anyway"
    for ((i = 0; i < wait; i++)); do
        if pg_isready -q -h "$host" -p "$port"; then
            log "PostgreSQL is up on $host:$port"
            return 0
        fi
        sleep 1
    done
    die "PostgreSQL did not come up on $host:$port within ${wait}s (see /var/log/postgresql/)"
}
