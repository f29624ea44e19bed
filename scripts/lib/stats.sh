# shellcheck shell=bash
# scripts/lib/stats.sh — sourced library: the small sums the benchmarks
# print.
#
#   median [EMPTY]            the median of the numbers on stdin, one a
#                             line (the upper one of an even count); EMPTY
#                             (default "-") when there are none
#   json_field FILE KEY [EMPTY]
#                             the number after "KEY": on FILE's last line
#                             (the programs print one JSON object a line);
#                             EMPTY (default "-") when absent
#   mpps RATE [FORMAT]        RATE (per second) in millions, printf FORMAT
#                             (default %.2f)
#   percent PART WHOLE        100 x PART / WHOLE to one decimal; "-" when
#                             WHOLE is not above 0 (nothing to compare with)

median() {
    sort -n | awk -v empty="${1:--}" '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print empty }'
}

json_field() {
    tail -n 1 "$1" | grep -oP "\"$2\":\K[0-9.]+" || echo "${3:--}"
}

mpps() {
    awk -v r="$1" -v f="${2:-%.2f}" 'BEGIN { printf f, r / 1e6 }'
}

percent() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", 100 * a / b; else print "-" }'
}
