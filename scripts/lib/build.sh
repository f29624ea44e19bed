# shellcheck shell=bash
# scripts/lib/build.sh — sourced library: configures and builds ringsock.
# Defines ringsock_repo_root (prints the repository root, found from this
# file's own location so callers may run from any cwd) and
# ringsock_build BUILD_DIR [meson setup args...]: runs `meson setup` when
# BUILD_DIR is not yet configured, otherwise `meson configure` with the args
# (only when args are given), then `ninja -C BUILD_DIR`. A relative
# BUILD_DIR is taken relative to the repository root. With RINGSOCK_WERROR=1
# in the environment, -Dwerror=true is added. Limits: does not wipe or
# reconfigure a build directory whose setup failed half-way beyond what
# meson itself does; the caller owns cleaning.

ringsock_repo_root() {
    local here
    here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
    (cd -- "$here/../.." && pwd -P)
}

# ringsock_build BUILD_DIR [meson setup args...]
# Returns meson's or ninja's exit status.
ringsock_build() {
    if (($# < 1)); then
        echo "ringsock_build: usage: ringsock_build BUILD_DIR [meson args...]" >&2
        return 2
    fi
    local root dir
    root=$(ringsock_repo_root)
    dir=$1
    shift
    [[ "$dir" == /* ]] || dir="$root/$dir"
    local -a args=("$@")
    if [[ "${RINGSOCK_WERROR:-0}" == 1 ]]; then
        args+=(-Dwerror=true)
    fi
    if [[ -f "$dir/build.ninja" && -d "$dir/meson-private" ]]; then
        if ((${#args[@]} > 0)); then
            meson configure "$dir" "${args[@]}"
        fi
    else
        meson setup "$dir" "$root" "${args[@]}"
    fi
    ninja -C "$dir"
}
