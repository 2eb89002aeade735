#!/bin/sh
# make_certs.sh DIR: throwaway certificates for the TLS tests (EC P-256).
#
#   ca.crt ca.key                 the test CA
#   server.crt server.key         for 127.0.0.1 and localhost, from the CA
#   client.crt client.key         a client certificate from the CA
#   expired.crt expired.key       like server.crt, valid only in January 2020
#   wrongname.crt wrongname.key   from the CA, for DNS:other.example only
#   cnonly.crt cnonly.key         from the CA, CN=localhost but only
#                                 IP:127.0.0.1 in its subjectAltName (a
#                                 client that reads the CN takes it for
#                                 localhost; RFC 6125 says not to)
#   other-ca.crt other-ca.key     a second CA nobody trusts
#   unknown.crt unknown.key       like server.crt, from other-ca
#   other-client.crt other-client.key  a client certificate from other-ca
#   cadir/                        ca.crt and its hash link (openssl rehash)
#
# Idempotent: a complete set that is valid for another day is kept (the
# fixture runs before every TLS test run); otherwise a new set is made in a
# scratch directory and moved in, so DIR never holds half a set.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 64
fi
dir=$1
mkdir -p "$dir"

files="ca.crt ca.key server.crt server.key client.crt client.key expired.crt
expired.key wrongname.crt wrongname.key cnonly.crt cnonly.key other-ca.crt other-ca.key unknown.crt
unknown.key other-client.crt other-client.key"

complete=1
for f in $files; do
    [ -s "$dir/$f" ] || complete=0
done
[ -d "$dir/cadir" ] || complete=0
if [ $complete = 1 ] &&
    openssl x509 -checkend 86400 -noout -in "$dir/server.crt" >/dev/null 2>&1 &&
    openssl x509 -checkend 86400 -noout -in "$dir/ca.crt" >/dev/null 2>&1; then
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/redlock-certs-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() { # name subject
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -sha256 -days 3650 -subj "$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$1.crt"
}

# leaf name issuer subject extensions...: a key and a certificate from issuer
leaf() {
    name=$1 issuer=$2 subj=$3
    shift 3
    key "$name.key"
    openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
    : >"$name.ext"
    for e in "$@"; do printf '%s\n' "$e" >>"$name.ext"; done
    openssl x509 -req -in "$name.csr" -CA "$issuer.crt" -CAkey "$issuer.key" \
        -CAcreateserial -sha256 -days 825 -extfile "$name.ext" -out "$name.crt" 2>/dev/null
}

server_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,DNS:localhost"
client_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"

ca ca "/CN=libredlock test CA"
ca other-ca "/CN=libredlock other CA"
# Redis uses server.crt for its replication links too, hence clientAuth.
leaf server ca "/CN=127.0.0.1" "$server_ext"
leaf client ca "/CN=redlock-client" "$client_ext"
leaf wrongname ca "/CN=other.example" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:other.example"
leaf cnonly ca "/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1"
leaf unknown other-ca "/CN=127.0.0.1" "$server_ext"
leaf other-client other-ca "/CN=redlock-client" "$client_ext"

# x509 -req (OpenSSL 3.0) cannot date a certificate in the past; `ca` can.
mkdir ca-db
: >ca-db/index.txt
cat >ca-db/ca.cnf <<EOF
[ ca ]
default_ca = test
[ test ]
database = ca-db/index.txt
new_certs_dir = ca-db
serial = ca-db/serial
default_md = sha256
policy = any
copy_extensions = none
[ any ]
commonName = supplied
[ ext ]
$server_ext
EOF
echo 01 >ca-db/serial
key expired.key
openssl req -new -key expired.key -subj "/CN=127.0.0.1" -out expired.csr
openssl ca -batch -config ca-db/ca.cnf -cert ca.crt -keyfile ca.key -in expired.csr \
    -startdate 20200101000000Z -enddate 20200102000000Z -extensions ext \
    -notext -out expired.crt 2>/dev/null

mkdir cadir
cp ca.crt cadir/
if ! openssl rehash cadir 2>/dev/null; then
    c_rehash cadir >/dev/null
fi

chmod 600 ./*.key
for f in $files; do
    mv -f "$f" "$dir/$f"
done
rm -rf "$dir/cadir"
mv cadir "$dir/cadir"
