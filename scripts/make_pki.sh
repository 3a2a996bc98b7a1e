#!/usr/bin/env bash
# Creates a throw-away federation PKI with the openssl CLI (for demos and tests):
#   ca.pem/ca.key, coordinator.pem/.key (SAN localhost, 127.0.0.1), operator.pem/.key
#   (OU=operator) and one client certificate per name (OU=client, CN=name).
# Usage: scripts/make_pki.sh DIR client-name[=Organization]...
# Identities: CN is the name, OU the role the coordinator checks, O the organization (the
# model card groups participants by it; "Tessera demo" unless given). Keys are EC P-256.
set -euo pipefail
dir=$1; shift
mkdir -p "$dir"
cd "$dir"
umask 077
days=30

openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout ca.key -out ca.pem -days "$days" -subj "/O=Tessera demo/CN=Tessera demo CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2>/dev/null

issue() {  # name role [san] [organization]
  local name=$1 role=$2 san=${3:-} org=${4:-Tessera demo}
  local ext
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$san" ]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$san"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } > "$ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$name.key" -out "$name.csr" -subj "/O=$org/OU=$role/CN=$name" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out "$name.pem" -days "$days" -extfile "$ext" 2>/dev/null
  rm -f "$name.csr" "$ext"
}

issue coordinator coordinator "DNS:localhost,IP:127.0.0.1"
issue operator operator
for client in "$@"; do
  if [[ $client == *=* ]]; then
    issue "${client%%=*}" client "" "${client#*=}"
  else
    issue "$client" client
  fi
done
rm -f ca.srl
echo "make_pki: CA, coordinator, operator and $# client certificates in $PWD"
