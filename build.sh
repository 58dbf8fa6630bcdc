#!/usr/bin/env bash
# UserspaceDr build entry point.
#   ./build.sh build   restore, build, publish the CLI to artifacts/udr/udr
#   ./build.sh test    install what is missing, build, run every test (namespace lab tests too when root)
#   ./build.sh bench   run the BenchmarkDotNet suite (and the lab bench when root)
#   ./build.sh demo    build, then bring up the namespace lab with udr balancing real traffic
#   ./build.sh pcaps   regenerate the pcap fixtures in pcaps/
#   ./build.sh install [--prefix DIR]   a self-contained udr, its systemd units and an example /etc/udr (root)
#   ./build.sh deb [--version V]        artifacts/udr_V_amd64.deb, built with dpkg-deb and checked with lintian
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log() { printf '[build] %s\n' "$*" >&2; }

# Debian packages the lab and the live backends need. Installed only when missing, only as root.
# prometheus: its server and promtool, for the metrics test (the package's own service is never started: see below);
# lintian and systemd (systemd-analyze) check the Debian package and its units; tmux is the terminal udr top is tested in;
# bird2 announces a VIP by the carrier of udr's device (udr run --announce).
APT_PACKAGES=(libpcap0.8 nftables iproute2 ethtool tcpdump curl socat ldirectord keepalived tcpreplay prometheus lintian systemd tmux bird2 libbpf1)
ensure_packages() {
    local missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    # The lab's real servers run python3 one-liners; any python3 on PATH will do.
    command -v python3 >/dev/null || missing+=(python3)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        log "missing packages (${missing[*]}); not root, so the lab tests will be skipped"
        return 0
    fi
    log "installing ${missing[*]}"
    # The tests start the daemons they need themselves; a package's service (prometheus.service) must not start on
    # install and stay running. invoke-rc.d and deb-systemd-invoke ask policy-rc.d: 101 is "action forbidden".
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || rc=$?
    [ $rc -eq 0 ] && { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?; }
    [ $own_policy -eq 1 ] && rm -f "$policy"
    return $rc
}

ensure_dotnet() {
    command -v dotnet >/dev/null || { log "the .NET SDK (dotnet) is required"; exit 2; }
}

do_build() {
    ensure_dotnet
    # Explicit returns: callers may run this where errexit is off (an if condition).
    dotnet build UserspaceDr.sln -c Release -nologo -v quiet -clp:ErrorsOnly || return 1
    dotnet publish src/UserspaceDr.Cli/UserspaceDr.Cli.csproj -c Release -nologo -v quiet -clp:ErrorsOnly -o artifacts/udr || return 1
    log "udr published to artifacts/udr/udr"
}

do_test() {
    ensure_packages
    if ! (do_build); then
        echo "0 passed, 1 failed"   # the build failed: nothing ran, and that must show
        return 1
    fi
    local results="$ROOT/artifacts/test-results"
    rm -rf "$results"
    local rc=0 passed=0 failed=0 project
    # The unit tests first (no root needed), then the lab tests (network namespaces, root).
    for project in UserspaceDr.Tests UserspaceDr.LabTests; do
        dotnet test "tests/$project/$project.csproj" -c Release --no-build -nologo \
            --logger "trx;LogFileName=$project.trx" --logger "console;verbosity=normal" --results-directory "$results" || rc=$?
        local trx="$results/$project.trx"
        if [ -f "$trx" ]; then
            local counters p f
            counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
            p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
            f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
            passed=$((passed + ${p:-0}))
            failed=$((failed + ${f:-0}))
        else
            failed=$((failed + 1)) # the project did not run: that must show
            rc=1
        fi
    done
    if [ "$failed" -gt 0 ]; then
        # What failed and why, in the log's last lines (all that CI keeps of it).
        python3 tools/trx-failures.py "$results"/*.trx || true
    fi
    echo "$passed passed, $failed failed"
    return $rc
}

# ./build.sh bench [BenchmarkDotNet args]   the component benchmarks (e.g. -- --filter '*Established*')
# ./build.sh bench --lab [lab-bench args]    the lab bench: udr against the kernel's forwarding path, as root
do_bench() {
    if [ "${1:-}" = "--lab" ]; then
        shift
        APT_PACKAGES+=(iperf3 gnuplot-nox)
        ensure_packages
        do_build
        exec "$ROOT/bench/lab-bench.sh" "$@"
    fi
    do_build
    dotnet run -c Release --project bench/UserspaceDr.Bench -- "$@"
}

# A self-contained single-file udr (the .NET runtime inside: the balancer needs no .NET) in artifacts/udr-sc.
publish_self_contained() {
    ensure_dotnet
    rm -rf artifacts/udr-sc
    dotnet publish src/UserspaceDr.Cli/UserspaceDr.Cli.csproj -c Release -r linux-x64 --self-contained \
        -p:PublishSingleFile=true -p:DebugType=none -nologo -v quiet -clp:ErrorsOnly -o artifacts/udr-sc
}

do_install() {
    local prefix=/usr/local
    while [ $# -gt 0 ]; do
        case "$1" in
            --prefix) prefix=$2; shift 2 ;;
            *) echo "usage: $0 install [--prefix DIR]" >&2; exit 2 ;;
        esac
    done
    [ "$(id -u)" -eq 0 ] || { log "install writes under $prefix, /etc/udr and /etc/systemd/system: run it as root"; exit 2; }
    publish_self_contained
    packaging/install.sh --publish artifacts/udr-sc --prefix "$prefix"
    if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
}

do_deb() {
    local version="" root="$ROOT/artifacts/deb/root"
    while [ $# -gt 0 ]; do
        case "$1" in
            --version) version=$2; shift 2 ;;
            *) echo "usage: $0 deb [--version V]" >&2; exit 2 ;;
        esac
    done
    command -v dpkg-deb >/dev/null || { log "dpkg-deb is needed (Debian's dpkg)"; exit 2; }
    publish_self_contained
    [ -n "$version" ] || version=$(artifacts/udr-sc/udr --version | sed 's/+.*//')
    local commit arch
    commit=$(artifacts/udr-sc/udr --version | sed -n 's/.*+//p')
    arch=$(dpkg --print-architecture)
    rm -rf "$ROOT/artifacts/deb"
    packaging/install.sh --publish artifacts/udr-sc --prefix /usr --unit-dir /lib/systemd/system --destdir "$root" >&2
    install -d -m 0755 "$root/DEBIAN"
    install -m 0644 packaging/debian/copyright "$root/usr/share/doc/udr/copyright"
    install -d -m 0755 "$root/usr/share/lintian/overrides"
    install -m 0644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/udr"
    sed -e "s|@VERSION@|$version|" -e "s|@COMMIT@|${commit:-unknown}|" -e "s|@DATE@|$(date -R)|" packaging/debian/changelog.in |
        gzip -9n > "$root/usr/share/doc/udr/changelog.gz"
    chmod 0644 "$root/usr/share/doc/udr/changelog.gz"
    sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@SIZE@|$(du -sk --exclude=DEBIAN "$root" | cut -f1)|" \
        packaging/debian/control.in > "$root/DEBIAN/control"
    printf '/etc/udr/udr.conf\n/etc/udr/udr.rules\n' > "$root/DEBIAN/conffiles"
    install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
    local deb="$ROOT/artifacts/udr_${version}_${arch}.deb"
    # xz at level 1: 10% larger than the default level, six times faster to build.
    dpkg-deb --root-owner-group -Zxz -z1 --build "$root" "$deb" >&2
    if command -v lintian >/dev/null; then
        lintian --fail-on error "$deb" >&2
    else
        log "lintian not installed: the package was not checked"
    fi
    echo "$deb"
}

do_pcaps() {
    ensure_dotnet
    dotnet run -c Release --project tools/UserspaceDr.PcapGen -- "$ROOT/pcaps"
}

do_demo() {
    ensure_packages
    do_build
    exec "$ROOT/tools/demo.sh"
}

case "${1:-build}" in
    build) do_build ;;
    test) do_test ;;
    bench) shift; do_bench "$@" ;;
    pcaps) do_pcaps ;;
    demo) do_demo ;;
    install) shift; do_install "$@" ;;
    deb) shift; do_deb "$@" ;;
    *) echo "usage: $0 {build|test|bench|demo|pcaps|install|deb}" >&2; exit 2 ;;
esac
