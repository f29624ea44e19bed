# shellcheck shell=bash
# scripts/lib/lwip-source.sh — sourced library: makes lwIP's source tarball
# (Debian's orig tarball, lwip_2.1.3+dfsg1.orig.tar.xz) available in
# subprojects/packagecache/, where Meson's wrap (subprojects/lwip.wrap) finds
# it without a network download of its own. The lwIP source never enters the
# repository (stack/lwip/README.md says why we build it ourselves).
# Defines ringsock_fetch_lwip_source, which does nothing and prints nothing
# when the tarball is already there with the recorded SHA-256. Otherwise it
# adds a bookworm `deb-src` entry when apt has none (a separate file,
# /etc/apt/sources.list.d/ringsock-deb-src.sources, mirroring the URIs,
# Suites, Components and Signed-By of the existing deb822 bookworm entry),
# runs `apt-get update` once, `apt-get source --download-only lwip` in a
# temporary directory (needs dpkg-dev and xz-utils, which deps.sh installs),
# verifies the SHA-256, copies the tarball in and prints one line.
# Runs apt as root, or through sudo when not root.
# Limits: Debian bookworm with deb822 sources (debian.sources) or a
# one-line `deb-src ... bookworm` already configured; needs a mirror.

RINGSOCK_LWIP_TARBALL=lwip_2.1.3+dfsg1.orig.tar.xz
# SHA-256 of Debian's orig tarball, recorded when it was first fetched; the
# same value goes into subprojects/lwip.wrap's source_hash.
RINGSOCK_LWIP_SHA256=0a8276d09fc4e97bbba2f953d74af2388fc2195ea156be9d7589e297a68fde24
RINGSOCK_LWIP_DEBSRC_FILE=/etc/apt/sources.list.d/ringsock-deb-src.sources

# _ringsock_lwip_have_bookworm_debsrc: 0 when apt already has a deb-src entry
# for the bookworm suite (one-line or deb822 format), 1 otherwise.
_ringsock_lwip_have_bookworm_debsrc() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$f" ]] || continue
        if grep -Eq '^[[:space:]]*deb-src([[:space:]]+\[[^]]*\])?[[:space:]]+[^[:space:]]+[[:space:]]+bookworm([[:space:]]|$)' "$f"; then
            return 0
        fi
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r "$f" ]] || continue
        # A stanza ends at a blank line; it counts when its Types holds
        # deb-src, its Suites hold bookworm and it is not Enabled: no.
        if awk '
            function flush() { if (src && suite && enabled) found = 1; src = suite = 0; enabled = 1 }
            BEGIN { enabled = 1 }
            /^[[:space:]]*$/ { flush(); next }
            /^#/ { next }
            tolower($1) == "types:"   { for (i = 2; i <= NF; i++) if ($i == "deb-src") src = 1 }
            tolower($1) == "suites:"  { for (i = 2; i <= NF; i++) if ($i == "bookworm") suite = 1 }
            tolower($1) == "enabled:" { if (tolower($2) == "no") enabled = 0 }
            END { flush(); exit !found }' "$f"; then
            return 0
        fi
    done
    return 1
}

# _ringsock_lwip_debsrc_stanzas: prints, as deb-src stanzas, every enabled
# deb822 stanza of /etc/apt/sources.list.d/debian.sources whose Suites hold
# bookworm, keeping its URIs, Suites, Components and Signed-By. Prints
# nothing when there is none.
_ringsock_lwip_debsrc_stanzas() {
    local f=/etc/apt/sources.list.d/debian.sources
    [[ -r "$f" ]] || return 0
    awk '
        function flush() {
            if (deb && suite && enabled && uris != "" && comps != "") {
                if (n++) print ""
                print "Types: deb-src"
                print "URIs: " uris
                print "Suites: " suites
                print "Components: " comps
                if (signed != "") print "Signed-By: " signed
            }
            deb = suite = 0; enabled = 1; uris = suites = comps = signed = ""
        }
        function rest() { $1 = ""; sub(/^[[:space:]]+/, ""); return $0 }
        BEGIN { enabled = 1 }
        /^[[:space:]]*$/ { flush(); next }
        /^#/ { next }
        tolower($1) == "types:"      { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1; next }
        tolower($1) == "suites:"     { for (i = 2; i <= NF; i++) if ($i == "bookworm") suite = 1; suites = rest(); next }
        tolower($1) == "uris:"       { uris = rest(); next }
        tolower($1) == "components:" { comps = rest(); next }
        tolower($1) == "signed-by:"  { signed = rest(); next }
        tolower($1) == "enabled:"    { if (tolower($2) == "no") enabled = 0; next }
        END { flush() }' "$f"
}

# ringsock_fetch_lwip_source: ensure subprojects/packagecache/ of the
# repository holding this file has lwIP's orig tarball with the recorded
# SHA-256. Returns 0 when the tarball is in place
# afterwards; 1 when not root and sudo is absent, when no bookworm entry
# exists to mirror, or when the download or the checksum fails (the reason
# goes to stderr, with apt's output). Never leaves a bad tarball behind.
ringsock_fetch_lwip_source() {
    local root
    root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
    local cache="$root/subprojects/packagecache"
    local dest="$cache/$RINGSOCK_LWIP_TARBALL"
    if [[ -f "$dest" ]] &&
        echo "$RINGSOCK_LWIP_SHA256  $dest" | sha256sum --check --status -; then
        return 0
    fi
    local -a sudo=()
    if ((EUID != 0)); then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "lwip-source: need root (or sudo) to fetch $RINGSOCK_LWIP_TARBALL with apt" >&2
            return 1
        fi
        sudo=(sudo)
    fi
    local log tmp rc=0
    log=$(mktemp "${TMPDIR:-/tmp}/ringsock-lwip.XXXXXX")
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringsock-lwip-src.XXXXXX")
    if ! _ringsock_lwip_have_bookworm_debsrc; then
        local stanzas
        stanzas=$(_ringsock_lwip_debsrc_stanzas)
        if [[ -z "$stanzas" ]]; then
            echo "lwip-source: no deb-src entry for bookworm and no bookworm entry in" \
                "/etc/apt/sources.list.d/debian.sources to mirror; add one by hand" >&2
            rm -rf -- "$log" "$tmp"
            return 1
        fi
        {
            echo "# Added by ringsock scripts/lib/lwip-source.sh: source packages"
            echo "# (apt-get source lwip), mirroring debian.sources."
            echo "$stanzas"
        } | "${sudo[@]}" tee "$RINGSOCK_LWIP_DEBSRC_FILE" >/dev/null || rc=$?
    fi
    if ((rc == 0)); then
        echo "fetching: $RINGSOCK_LWIP_TARBALL (apt-get source lwip)"
        # apt chatter goes to a log that is shown only on failure. The
        # download runs as the caller, in a directory the caller owns.
        {
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
                (cd -- "$tmp" && apt-get source --download-only -qq lwip)
        } >"$log" 2>&1 || rc=$?
    fi
    if ((rc == 0)) && [[ ! -f "$tmp/$RINGSOCK_LWIP_TARBALL" ]]; then
        echo "apt-get source lwip gave: $(ls -- "$tmp")" >>"$log"
        rc=1
    fi
    if ((rc == 0)) &&
        ! echo "$RINGSOCK_LWIP_SHA256  $tmp/$RINGSOCK_LWIP_TARBALL" |
        sha256sum --check --status -; then
        echo "SHA-256 mismatch: got $(sha256sum <"$tmp/$RINGSOCK_LWIP_TARBALL" | cut -d' ' -f1)," \
            "want $RINGSOCK_LWIP_SHA256" >>"$log"
        rc=1
    fi
    if ((rc == 0)); then
        mkdir -p -- "$cache" &&
            cp -- "$tmp/$RINGSOCK_LWIP_TARBALL" "$dest.part" &&
            mv -f -- "$dest.part" "$dest" || rc=$?
    fi
    if ((rc != 0)); then
        cat "$log" >&2
        echo "lwip-source: fetching $RINGSOCK_LWIP_TARBALL failed (exit $rc)" >&2
        rm -f -- "$dest.part"
    fi
    rm -rf -- "$log" "$tmp"
    return "$rc"
}
