#!/usr/bin/env bash
# make-certs.sh - a trial PKI for config/agent.yaml -> config/gateway.yaml
# over mutual TLS: a CA, the gateway's server certificate and one agent
# client certificate, with openssl. For a trial only: the CA's private key
# is a plain file beside the certificates. A fleet uses its own PKI
# (docs/security.md: cert-manager in Kubernetes).
#
# usage: config/tls/make-certs.sh OUT_DIR [GATEWAY_NAME...]
#        (make certs: OUT_DIR build/certs)
#
# GATEWAY_NAME: the names the agents dial (GATEWAY_ENDPOINT's host), as DNS
# names or IP addresses; localhost, 127.0.0.1 and ::1 are always included.
# OUT_DIR gets:
#   ca.crt ca.key                        the CA (ca.key signs; keep it apart)
#   gateway/ca.crt tls.crt tls.key       for the gateway (TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE)
#   agent/ca.crt tls.crt tls.key         for every agent (same variables)
# Each of gateway/ and agent/ has the layout of a cert-manager Secret
# (ca.crt, tls.crt, tls.key). Keys are ECDSA P-256, mode 0600. The CA is
# valid for DAYS_CA (365) days, the others for DAYS (90).
set -euo pipefail

if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 2
fi
out=$1
shift
days=${DAYS:-90}
days_ca=${DAYS_CA:-365}
command -v openssl >/dev/null || { echo "make-certs.sh: openssl is not installed (Debian: apt-get install openssl)" >&2; exit 1; }

mkdir -p "$out/gateway" "$out/agent"
umask 077

# The gateway's subjectAltName: localhost and the loopback addresses, then
# each name given.
san="DNS:localhost,IP:127.0.0.1,IP:::1"
for name in "$@"; do
	if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then
		san+=",IP:$name"
	else
		san+=",DNS:$name"
	fi
done

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

key "$out/ca.key"
openssl req -x509 -new -key "$out/ca.key" -sha256 -days "$days_ca" \
	-subj "/O=otelcol-mremap trial/CN=otelcol-mremap trial CA" \
	-addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
	-addext "keyUsage=critical,keyCertSign,cRLSign" \
	-out "$out/ca.crt"

# leaf NAME CN EXTENSIONS: a key, and a certificate the CA signs.
leaf() {
	local dir=$out/$1 ext
	ext=$(mktemp)
	printf '%s\n' "${@:3}" >"$ext"
	key "$dir/tls.key"
	openssl req -new -key "$dir/tls.key" -subj "/O=otelcol-mremap trial/CN=$2" -out "$dir/tls.csr"
	openssl x509 -req -in "$dir/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
		-sha256 -days "$days" -extfile "$ext" -out "$dir/tls.crt" 2>/dev/null
	rm -f "$dir/tls.csr" "$ext"
	cp "$out/ca.crt" "$dir/ca.crt"
}

leaf gateway otelcol-mremap-gateway \
	"basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
	"extendedKeyUsage=serverAuth" "subjectAltName=$san"
leaf agent otelcol-mremap-agent \
	"basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
	"extendedKeyUsage=clientAuth"
rm -f "$out/ca.srl"
chmod 0644 "$out/ca.crt" "$out"/{gateway,agent}/{ca,tls}.crt

echo "make-certs.sh: wrote $out/ca.crt, $out/gateway/ and $out/agent/ (gateway names: ${san//,/ })"
