# shellcheck shell=bash
# scripts/lib/hugepages.sh — sourced library: a temporary 2 MB hugepage
# reservation for tests that need one (dpdk-dumpcap and dpdk-pdump are DPDK
# secondary processes and cannot attach to a --no-huge primary).
#   ringsock_hugepages_available     0 if a hugetlbfs is mounted and free
#                                    hugepages exist, 1 otherwise.
#   ringsock_hugepages_reserve MB    as root: make at least MB megabytes of
#                                    free 2 MB pages available (raises the
#                                    2048kB nr_hugepages) and mount hugetlbfs
#                                    (pagesize=2M) at /dev/hugepages if no
#                                    hugetlbfs is mounted. Records exactly
#                                    what it changed in a state file.
#   ringsock_hugepages_release       undoes exactly what reserve changed
#                                    (unmount, restore nr_hugepages) and
#                                    removes the state file; a no-op when
#                                    nothing was reserved.
# The state lives in a file (RINGSOCK_HUGEPAGES_STATE, default
# /run/ringsock-hugepages.state), so reserve and release may run in
# different processes (e.g. a test's set-up and tear-down). One reservation
# at a time: reserve refuses while a state file exists.
# Limits: Linux with 2 MB hugepages only; the kernel may not find enough
# contiguous memory, in which case reserve undoes itself and fails. Hugepage
# files that DPDK processes leave in a hugetlbfs we did NOT mount are not
# removed (use --huge-unlink, or delete your own --file-prefix files); pages
# still in use at release are freed by the kernel once their users go away.

RINGSOCK_HUGEPAGES_SYSFS=/sys/kernel/mm/hugepages/hugepages-2048kB

_ringsock_hp_state() { echo "${RINGSOCK_HUGEPAGES_STATE:-/run/ringsock-hugepages.state}"; }

# _ringsock_hp_mounted: true if some hugetlbfs is mounted.
_ringsock_hp_mounted() { awk '$3 == "hugetlbfs" { found = 1 } END { exit !found }' /proc/mounts; }

ringsock_hugepages_available() {
    local free
    free=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
    _ringsock_hp_mounted && [[ "${free:-0}" -gt 0 ]]
}

# ringsock_hugepages_reserve MB. Returns 0 on success; 1 on failure with a
# message on stderr (nothing left changed).
ringsock_hugepages_reserve() {
    local mb=${1:-}
    local state
    state=$(_ringsock_hp_state)
    if ! [[ "$mb" =~ ^[0-9]+$ ]] || ((mb == 0)); then
        echo "hugepages: reserve needs a size in MB, got '$mb'" >&2
        return 1
    fi
    if ((EUID != 0)); then
        echo "hugepages: reserve needs root" >&2
        return 1
    fi
    if [[ ! -d "$RINGSOCK_HUGEPAGES_SYSFS" ]]; then
        echo "hugepages: no 2 MB hugepage support ($RINGSOCK_HUGEPAGES_SYSFS missing)" >&2
        return 1
    fi
    if [[ -e "$state" ]]; then
        echo "hugepages: a reservation is already recorded in $state; release it first" >&2
        return 1
    fi

    local want=$(((mb + 1) / 2))
    local nr free old_nr new_nr=""
    nr=$(<"$RINGSOCK_HUGEPAGES_SYSFS/nr_hugepages")
    free=$(<"$RINGSOCK_HUGEPAGES_SYSFS/free_hugepages")
    old_nr=$nr
    if ((free < want)); then
        new_nr=$((nr + want - free))
        echo "$new_nr" >"$RINGSOCK_HUGEPAGES_SYSFS/nr_hugepages"
        free=$(<"$RINGSOCK_HUGEPAGES_SYSFS/free_hugepages")
        if ((free < want)); then
            echo "$old_nr" >"$RINGSOCK_HUGEPAGES_SYSFS/nr_hugepages"
            echo "hugepages: kernel gave only $free free 2 MB pages of $want wanted" >&2
            return 1
        fi
    fi

    local mounted=""
    if ! _ringsock_hp_mounted; then
        mkdir -p /dev/hugepages
        if ! mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages; then
            [[ -z "$new_nr" ]] || echo "$old_nr" >"$RINGSOCK_HUGEPAGES_SYSFS/nr_hugepages"
            echo "hugepages: mounting hugetlbfs at /dev/hugepages failed" >&2
            return 1
        fi
        mounted=/dev/hugepages
    fi

    # What we changed, as KEY=VALUE lines read back by release (an empty
    # value means "not changed").
    {
        if [[ -n "$new_nr" ]]; then
            echo "saved_nr=$old_nr"
        else
            echo "saved_nr="
        fi
        echo "mounted=$mounted"
    } >"$state"
}

# ringsock_hugepages_release. Returns 0 when everything recorded was undone
# (or nothing was recorded); 1 if the unmount failed (state file kept so a
# later call can retry).
ringsock_hugepages_release() {
    local state saved_nr="" mounted=""
    state=$(_ringsock_hp_state)
    [[ -e "$state" ]] || return 0
    saved_nr=$(awk -F= '$1 == "saved_nr" { print $2 }' "$state")
    mounted=$(awk -F= '$1 == "mounted" { print $2 }' "$state")
    if [[ -n "$mounted" ]] && awk -v m="$mounted" '$2 == m && $3 == "hugetlbfs" { f = 1 } END { exit !f }' /proc/mounts; then
        if ! umount "$mounted"; then
            echo "hugepages: could not unmount $mounted (still in use?); state kept in $state" >&2
            return 1
        fi
    fi
    if [[ -n "$saved_nr" ]]; then
        echo "$saved_nr" >"$RINGSOCK_HUGEPAGES_SYSFS/nr_hugepages"
    fi
    rm -f "$state"
}
