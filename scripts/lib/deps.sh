# shellcheck shell=bash
# scripts/lib/deps.sh — sourced library: installs the Debian (bookworm)
# packages ringsock needs to build, test and run its testbeds.
# Defines ringsock_install_deps, which checks every package with dpkg-query
# and does nothing (and prints nothing) when all are installed; otherwise it
# runs `apt-get update` once, preseeds tshark's debconf question (no setuid
# dumpcap), installs only the missing packages and prints one line
# "installing: <list>". Then it makes lwIP's source tarball available for
# the Meson wrap (scripts/lib/lwip-source.sh: quiet when already there,
# one line "fetching: ..." when it downloads). Runs apt as root, or through
# sudo when not root.
# Limits: Debian/Ubuntu with apt only; needs network access to a mirror when
# something is missing; does not upgrade packages that are already present.

# The package list. dpdk-dev carries dpdk-testpmd, dpdk-dumpcap and
# dpdk-telemetry.py; libclang-rt-14-dev carries clang's sanitizer runtimes;
# ethtool, iputils-ping and netcat-openbsd are what scripts/netns and the
# integration tests run on the namespace side (offloads off, ping/ping -6, nc);
# dpkg-dev and xz-utils are what `apt-get source lwip` needs to fetch lwIP.
RINGSOCK_DEB_PACKAGES=(
    build-essential pkg-config meson ninja-build
    libdpdk-dev dpdk dpdk-dev
    libspdlog-dev libgtest-dev libtomlplusplus-dev libcli11-dev
    libbenchmark-dev libpcap-dev
    iproute2 python3 python3-scapy iperf3 tshark
    clang libclang-rt-14-dev procps
    ethtool iputils-ping netcat-openbsd
    dpkg-dev xz-utils
)

# shellcheck source=scripts/lib/lwip-source.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lwip-source.sh"

# ringsock_install_deps: install whatever in RINGSOCK_DEB_PACKAGES is missing,
# then fetch lwIP's source tarball when it is not yet in
# subprojects/packagecache/. Returns 0 when everything is in place
# afterwards; non-zero (apt's status) on failure, or 1 when not root and
# sudo is absent.
ringsock_install_deps() {
    local pkg status
    local -a missing=() sudo=()
    for pkg in "${RINGSOCK_DEB_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        if [[ "$status" != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        ringsock_fetch_lwip_source
        return
    fi
    if ((EUID != 0)); then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "deps: missing packages (${missing[*]}) and not root; sudo not found" >&2
            return 1
        fi
        sudo=(sudo)
    fi
    echo "installing: ${missing[*]}"
    # apt and dpkg chatter goes to a log that is shown only on failure.
    local log rc=0
    log=$(mktemp "${TMPDIR:-/tmp}/ringsock-deps.XXXXXX")
    {
        # tshark (wireshark-common) asks whether non-root users may capture.
        echo 'wireshark-common wireshark-common/install-setuid boolean false' |
            "${sudo[@]}" debconf-set-selections &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends "${missing[@]}"
    } >"$log" 2>&1 || rc=$?
    if ((rc != 0)); then
        cat "$log" >&2
        echo "deps: installing ${missing[*]} failed (exit $rc)" >&2
    fi
    rm -f "$log"
    if ((rc != 0)); then
        return "$rc"
    fi
    ringsock_fetch_lwip_source
}
