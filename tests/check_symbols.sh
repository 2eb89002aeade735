#!/usr/bin/env bash
# Checks what libredlock exposes to the programs that link it.
#
#   check_symbols.sh shared path/to/libredlock.so include/redlock.h
#     The dynamic symbols defined by the library are exactly the names
#     declared REDLOCK_API in the header: nothing that does not start with
#     redlock_, no internal (redlock__) name, no declared name missing.
#
#   check_symbols.sh static path/to/libredlock.a include/redlock.h
#     Every global symbol the archive defines starts with redlock_ (public,
#     declared REDLOCK_API) or redlock__ (internal), so that a vendored
#     static copy cannot clash with its host; every declared name is defined.
#
# NM may name the nm to use (default nm).
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: $0 shared|static LIBRARY HEADER" >&2
    exit 2
fi
mode=$1 lib=$2 header=$3
nm=${NM:-nm}
[ -f "$lib" ] || { echo "no such library: $lib" >&2; exit 1; }
[ -f "$header" ] || { echo "no such header: $header" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Names declared REDLOCK_API in the header (comments and preprocessor lines
# removed; the name is the last identifier before the first '(' or ';').
perl -e '
    local $/; my $src = <STDIN>;
    $src =~ s{/\*.*?\*/}{ }gs;
    $src =~ s{//[^\n]*}{}g;
    $src =~ s{^[ \t]*#(?:[^\n]*\\\n)*[^\n]*}{}mg;
    while ($src =~ /\bREDLOCK_API\b([^;(]*)/g) {
        my @ids = ($1 =~ /([A-Za-z_]\w*)/g);
        print "$ids[-1]\n" if @ids;
    }
' <"$header" | sort -u >"$tmp/declared"

if [ ! -s "$tmp/declared" ]; then
    echo "FAIL: found no REDLOCK_API declaration in $header" >&2
    exit 1
fi

fail=0
case "$mode" in
shared)
    # Every defined dynamic symbol: "ADDR TYPE NAME" (version suffixes cut).
    "$nm" -D --defined-only "$lib" >"$tmp/nm"
    awk 'NF >= 3 { n = $3; sub(/@.*/, "", n); print n }' "$tmp/nm" |
        sort -u >"$tmp/exported"
    if grep -v '^redlock_' "$tmp/exported" >"$tmp/bad"; then
        echo "FAIL: exported symbols without the redlock_ prefix:" >&2
        sed 's/^/    /' "$tmp/bad" >&2
        fail=1
    fi
    if comm -13 "$tmp/declared" "$tmp/exported" >"$tmp/extra" && [ -s "$tmp/extra" ]; then
        echo "FAIL: exported but not declared REDLOCK_API in $(basename "$header"):" >&2
        sed 's/^/    /' "$tmp/extra" >&2
        fail=1
    fi
    if comm -23 "$tmp/declared" "$tmp/exported" >"$tmp/missing" && [ -s "$tmp/missing" ]; then
        echo "FAIL: declared REDLOCK_API but not exported:" >&2
        sed 's/^/    /' "$tmp/missing" >&2
        fail=1
    fi
    count=$(wc -l <"$tmp/exported")
    ;;
static)
    # Global definitions: upper-case types, plus u (unique global).
    "$nm" --defined-only "$lib" >"$tmp/nm"
    awk 'NF >= 3 && $2 ~ /^([A-Z]|u)$/ { print $3 }' "$tmp/nm" | sort -u >"$tmp/globals"
    if grep -v '^redlock_' "$tmp/globals" >"$tmp/bad"; then
        echo "FAIL: global symbols in the archive without the redlock_/redlock__ prefix:" >&2
        sed 's/^/    /' "$tmp/bad" >&2
        fail=1
    fi
    grep '^redlock_' "$tmp/globals" | grep -v '^redlock__' >"$tmp/public" || true
    if comm -13 "$tmp/declared" "$tmp/public" >"$tmp/extra" && [ -s "$tmp/extra" ]; then
        echo "FAIL: global redlock_ symbols not declared REDLOCK_API (internal names must be static or redlock__):" >&2
        sed 's/^/    /' "$tmp/extra" >&2
        fail=1
    fi
    if comm -23 "$tmp/declared" "$tmp/public" >"$tmp/missing" && [ -s "$tmp/missing" ]; then
        echo "FAIL: declared REDLOCK_API but not defined in the archive:" >&2
        sed 's/^/    /' "$tmp/missing" >&2
        fail=1
    fi
    count=$(wc -l <"$tmp/public")
    ;;
*)
    echo "mode must be shared or static, not $mode" >&2
    exit 2
    ;;
esac

if [ "$fail" -ne 0 ]; then
    exit 1
fi
echo "OK: $mode $(basename "$lib"): $count public symbols, exactly those declared REDLOCK_API in $(basename "$header")"
