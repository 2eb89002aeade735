#!/usr/bin/env bash
# Packaging test: libredlock as its users get it.
#
#   run.sh CMAKE GENERATOR CC BUILD_DIR SOURCE_DIR SHARED(ON|OFF) VERSION
#
# 1. installs the already-built BUILD_DIR into a temporary prefix
#    (cmake --install), and checks what landed there;
# 2. builds tests/consumers/main.c three ways and runs it, expecting
#    "redlock version=VERSION":
#    a. find_package(redlock CONFIG REQUIRED) + redlock::redlock,
#    b. pkg-config --cflags --libs redlock (--static for a static build)
#       and plain $CC,
#    c. add_subdirectory(SOURCE_DIR) from a host project, where every
#       REDLOCK_BUILD_* / REDLOCK_INSTALL option must default to OFF.
# Registered with ctest as "consumers" (label packaging).
set -euo pipefail

if [ $# -ne 7 ]; then
    echo "usage: $0 CMAKE GENERATOR CC BUILD_DIR SOURCE_DIR ON|OFF VERSION" >&2
    exit 2
fi
cmake=$1 generator=$2 cc=$3 build=$4 src=$5 shared=$6 version=$7
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
expect="redlock version=$version"

work=$(mktemp -d /tmp/redlock-consumers.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

step() { printf '\n=== %s\n' "$*"; }
die() { printf 'consumers: FAIL: %s\n' "$*" >&2; exit 1; }

run_consumer() { # NAME BINARY [LIBDIR]
    local name=$1 bin=$2 libdir=${3:-} out
    [ -x "$bin" ] || die "$name: no executable $bin"
    if ! out=$(LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} "$bin"); then
        die "$name: the consumer failed: $out"
    fi
    [ "$out" = "$expect" ] || die "$name: printed '$out', expected '$expect'"
    echo "$name: $out"
}

if [ "$shared" = ON ]; then
    libglob='libredlock.so*'
    cmake_type=SHARED_LIBRARY
    pcstatic=
else
    libglob='libredlock.a'
    cmake_type=STATIC_LIBRARY
    pcstatic=--static
fi

# ---- 1. install ------------------------------------------------------------------
step "install into $prefix"
"$cmake" --install "$build" --prefix "$prefix"

[ -f "$prefix/include/redlock.h" ] || die "redlock.h not installed in $prefix/include"
pcfile=$(find "$prefix" -name redlock.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pcfile" ] || die "redlock.pc not installed"
pcdir=$(dirname "$pcfile")
libdir=$(dirname "$pcdir")
config=$(find "$prefix" -name redlockConfig.cmake | head -n 1)
[ -n "$config" ] || die "redlockConfig.cmake not installed"
cfgdir=$(dirname "$config")
for f in redlockConfigVersion.cmake redlockTargets.cmake RedlockDeps.cmake; do
    [ -f "$cfgdir/$f" ] || die "$f not installed next to redlockConfig.cmake"
done
# shellcheck disable=SC2086
ls $libdir/$libglob >/dev/null 2>&1 || die "no $libglob in $libdir"
if [ "$shared" = ON ]; then
    [ -L "$libdir/libredlock.so" ] || die "no libredlock.so development symlink"
    [ -e "$libdir/libredlock.so.0" ] || die "no libredlock.so.0 (SOVERSION 0)"
    [ -f "$libdir/libredlock.so.$version" ] || die "no libredlock.so.$version"
    [ ! -e "$libdir/libredlock.a" ] || die "a shared build installed libredlock.a"
else
    [ ! -e "$libdir/libredlock.so" ] || die "a static build installed libredlock.so"
fi
unexpected=$(find "$prefix" -type f ! -name 'libredlock*' ! -name redlock.h \
    ! -name redlock.pc ! -name 'redlock*.cmake' ! -name RedlockDeps.cmake \
    ! -path '*/bin/*' ! -path '*/share/*')
[ -z "$unexpected" ] || die "unexpected files installed: $unexpected"
grep -q "^prefix=$prefix\$" "$pcfile" || die "redlock.pc does not use the install prefix: $(grep '^prefix=' "$pcfile")"
echo "installed: $(cd "$prefix" && find . -type f -o -type l | sort | tr '\n' ' ')"

# The exported target names its include directory once.
targets=$(find "$prefix" -name redlockTargets.cmake | head -n 1)
incl=$(grep -o 'INTERFACE_INCLUDE_DIRECTORIES "[^"]*"' "$targets" || true)
[ "$(printf '%s' "$incl" | tr ';' '\n' | grep -c include)" -eq 1 ] ||
    die "redlockTargets.cmake: $incl (the include directory once, expected)"

# ---- 1b. the installed tool runs from its prefix, with a clean environment ------------
if [ -x "$prefix/bin/redlock" ]; then
    step "installed tool: env -i $prefix/bin/redlock --version"
    out=$(env -i "$prefix/bin/redlock" --version) ||
        die "the installed tool does not start with a clean environment"
    case "$out" in *"$version"*) ;; *) die "redlock --version printed '$out'" ;; esac
    echo "redlock --version: $out"
    if [ "$shared" = ON ]; then
        # It loads the library installed beside it, not another one.
        loaded=$(env -i LD_TRACE_LOADED_OBJECTS=1 "$prefix/bin/redlock" |
            awk '/libredlock\.so/ {print $3}')
        [ -n "$loaded" ] &&
            [ "$(readlink -f "$loaded")" = "$(readlink -f "$libdir/libredlock.so.0")" ] ||
            die "the installed tool loads '$loaded', not $libdir/libredlock.so.0"
        if command -v readelf >/dev/null; then
            readelf -d "$prefix/bin/redlock" | grep -q 'RUNPATH.*\$ORIGIN' ||
                die "the installed tool has no \$ORIGIN RUNPATH: $(readelf -d "$prefix/bin/redlock" | grep -E 'RPATH|RUNPATH')"
        fi
        echo "loads: $loaded"
    fi
fi

# ---- 2a. find_package -------------------------------------------------------------
step "find_package(redlock CONFIG REQUIRED)"
"$cmake" -S "$here/find_package" -B "$work/find_package" -G "$generator" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON \
    -DREDLOCK_EXPECT_PREFIX="$prefix" -DREDLOCK_EXPECT_TYPE="$cmake_type"
"$cmake" --build "$work/find_package"
run_consumer find_package "$work/find_package/consumer"

# ---- 2b. pkg-config + plain cc ------------------------------------------------------
step "pkg-config $pcstatic --cflags --libs redlock"
export PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
modversion=$(pkg-config --modversion redlock)
[ "$modversion" = "$version" ] || die "pkg-config --modversion says $modversion"
# shellcheck disable=SC2086
flags=$(pkg-config $pcstatic --cflags --libs redlock)
echo "flags: $flags"
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$work/pkgconfig-consumer" \
    "$here/main.c" $flags
run_consumer pkg-config "$work/pkgconfig-consumer" "$libdir"
if [ "$shared" = OFF ]; then
    if command -v readelf >/dev/null && readelf -d "$work/pkgconfig-consumer" | grep -q 'libredlock\.so'; then
        die "the static consumer links libredlock.so"
    fi
fi

# ---- 2c. add_subdirectory -----------------------------------------------------------
step "add_subdirectory($src)"
"$cmake" -S "$here/subdir" -B "$work/subdir" -G "$generator" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release \
    -DREDLOCK_SOURCE_DIR="$src" -DBUILD_SHARED_LIBS="$shared"
"$cmake" --build "$work/subdir"
run_consumer add_subdirectory "$work/subdir/consumer"
# Vendored, it installs nothing.
"$cmake" --install "$work/subdir" --prefix "$work/subdir-prefix" >/dev/null
if [ -d "$work/subdir-prefix" ] && [ -n "$(find "$work/subdir-prefix" -type f)" ]; then
    die "a vendored build installed: $(find "$work/subdir-prefix" -type f)"
fi

printf '\nconsumers: OK (%s): install, find_package, pkg-config, add_subdirectory\n' \
    "$([ "$shared" = ON ] && echo shared || echo static)"
