# Sourced by scripts/demo.sh and scripts/test.sh: install the Debian
# packages given as arguments that are not installed yet (apt-get update
# first; sudo when not root).  Nothing is done when all are present.
install_missing() {
    local missing=() p
    for p in "$@"; do
        if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
            missing+=("$p")
        fi
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    echo "${0##*/}: installing ${missing[*]}"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
}

# What building and testing libredlock needs.
# libssl-dev: TLS; openssl (the tool): the tests' certificates;
# redis-sentinel: the Sentinel tests.
REDLOCK_PACKAGES=(build-essential cmake pkg-config libhiredis-dev libcmocka-dev
                  redis-server libssl-dev openssl redis-sentinel)
