# shellcheck shell=bash
# The receivers the memif benchmarks (bench/rx-ceiling, bench/api-sink) run
# on one generator's traffic, each printing its mean rate in frames/s over
# the per-second samples after the first (ramp-up), or 0.
#
#   rxonly_rate DEVICE LCORES MAIN_LCORE FILE_PREFIX SECONDS LOG
#       dpdk-testpmd rxonly (the ceiling), forwarding on the lcore of LCORES
#       that is not MAIN_LCORE
#   testpmd_samples SECONDS LOG ARGS...
#       dpdk-testpmd ARGS, until SECONDS samples after its first non-zero one
#   l2_sink_rate ROOT DEVICE LCORE FILE_PREFIX SECONDS LOG
#       ringsock-sink, memif.toml, one engine on LCORE
#   generator_lcores
#       scripts/memif-gen's --main-lcore and --lcores, one word a line: the
#       receivers own CPUs 0 and 1, so with more CPUs the generator forwards
#       on CPU 2 (its main lcore, which only prints statistics, on 3, or on
#       0 with three CPUs); with two it forwards on CPU 0 beside the
#       receivers' application thread (their figures are then floors)
#   udp_sink_rate LOG
#       ringsock-udp-sink's rate in LOG: the datagrams counted between its
#       first and last per-second sample over the time between them (the
#       samples' own "pps" assumes exactly --interval-ms between them)
#   reaper_cpus N
#       the CPUs for N application threads of an API receiver whose engine
#       is on CPU 1, comma-separated: 0, then 4, 5, ... (CPUs 2 and 3 are
#       the generator's); with too few CPUs the list is shorter and the
#       threads share it in turn (their figures are then floors)
#
# The programs come from build/ or, after ringsock_use_bundle, a bundle.

# shellcheck source=scripts/lib/bundle.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/bundle.sh"

generator_lcores() {
    local cpus
    cpus=$(nproc)
    if ((cpus >= 4)); then
        printf '%s\n' --main-lcore 3 --lcores 2
    elif ((cpus == 3)); then
        printf '%s\n' --main-lcore 0 --lcores 2
    else
        printf '%s\n' --main-lcore 1 --lcores 0
    fi
}

reaper_cpus() {
    local n=$1 cpus=0 cpu
    for ((cpu = 4; cpu < $(nproc) && cpu < n + 3; cpu++)); do cpus+=",$cpu"; done
    echo "$cpus"
}

udp_sink_rate() {
    { grep -oP '^\{"t":\K[0-9.]+,"datagrams":[0-9]+' "$1" || true; } |
        awk -F',"datagrams":' 'NR == 1 { t0 = $1; d0 = $2 } { t = $1; d = $2 }
            END { if (NR > 1 && t > t0) printf "%.0f", (d - d0) / (t - t0); else print 0 }'
}

# mean of all samples but the first (ramp-up); `mean_after_first 0` skips none
mean_after_first() {
    awk -v skip="${1:-1}" 'NR > skip { s += $1; n++ } END { if (n) printf "%.0f", s / n; else print 0 }'
}

# testpmd prints a sample a second from its own start, and its EAL start-up
# (1 GiB without hugepages) takes 2-5 s here, longer on a busy machine: a
# fixed timeout sometimes left one sample, which mean_after_first drops as
# ramp-up ("measured nothing"). So testpmd_samples SECONDS LOG ARGS... runs
# testpmd with ARGS ($RINGSOCK_TESTPMD, default dpdk-testpmd) until it has
# SECONDS samples after the first non-zero one, or SECONDS + 15 s at most,
# and prints their mean.
testpmd_samples() {
    local seconds=$1 log=$2
    shift 2
    # shellcheck disable=SC2086 # the plugin arguments are words
    timeout -s INT -k 5 $((seconds + 15)) "${RINGSOCK_TESTPMD:-dpdk-testpmd}" ${RINGSOCK_TESTPMD_EAL_ARGS:-} "$@" \
        >"$log" 2>&1 &
    local testpmd=$!
    while kill -0 "$testpmd" 2>/dev/null; do
        sleep 0.5
        if (($({ grep -oP "Rx-pps:\s+\K[0-9]+" "$log" || true; } | after_first_nonzero | wc -l) >= seconds)); then
            kill -INT "$testpmd" 2>/dev/null || true
            break
        fi
    done
    wait "$testpmd" 2>/dev/null || true
    { grep -oP "Rx-pps:\s+\K[0-9]+" "$log" || true; } | after_first_nonzero | head -n "$seconds" | mean_after_first 0
}

# testpmd rxonly on one forwarding core, receiving from DEVICE.
rxonly_rate() {
    local device=$1 lcores=$2 main=$3 prefix=$4 seconds=$5 log=$6
    testpmd_samples "$seconds" "$log" -l "$lcores" --main-lcore "$main" --no-huge -m 1024 \
        --file-prefix "$prefix" --no-pci --vdev "$device" -- \
        --forward-mode=rxonly --stats-period 1 --nb-cores 1 --total-num-mbufs 16384 -a
}

# the samples after the first non-zero one (which is partial: ramp-up)
after_first_nonzero() { awk 'seen { print } $1 > 0 { seen = 1 }'; }

l2_sink_rate() {
    local root=$1 device=$2 lcore=$3 prefix=$4 seconds=$5 log=$6
    local settings
    mapfile -t settings < <(ringsock_program_settings ringsock-sink)
    timeout -s INT -k 5 $((seconds + 30)) "$(ringsock_program ringsock-sink)" "${settings[@]}" \
        --profile "$root/drivers_config/memif.toml" --set "port.device=$device" --set "eal.lcores=$lcore" \
        --set "eal.file_prefix=$prefix" --duration "$seconds" --json --log-level error >"$log" 2>&1 || true
    { grep -oP "\"t\":[0-9.]+,\"rx_pps\":\K[0-9]+" "$log" || true; } | mean_after_first
}
