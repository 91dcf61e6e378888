#!/usr/bin/env bash
# vmflow-hosts-cas: the VM's /etc/hosts and CA bundle, from the image's own
# and /var/identity.
#
# Usage: hosts-cas.sh IDENTITY_DIR OUT_DIR BASE_HOSTS BASE_CAS
#   IDENTITY_DIR  /var/identity
#   OUT_DIR       /run/vmflow: writes hosts and ca-certificates.crt there,
#                 which /etc/hosts and the /etc/ssl CA bundles link to
#   BASE_HOSTS    the hosts file NixOS built into the image
#   BASE_CAS      the CA bundle NixOS built into the image
#
# IDENTITY_DIR/hosts: lines in /etc/hosts format (an address, then names),
# added after the image's; a line that does not start with an IPv4 or IPv6
# address is reported and skipped. IDENTITY_DIR/ca-certificates.pem: PEM
# certificates, added after the image's bundle; a file without a complete
# certificate adds nothing and is reported. Missing files add nothing. Each
# output is written whole and renamed into place. Exits 0 whenever the
# image's own files could be written, so a bad file never costs the VM its
# localhost entry or the public CAs.

dir=$1
out=$2
base_hosts=$3
base_cas=$4

say() { echo "vmflow-hosts-cas: $*"; }

mkdir -p "$out" || exit 1

# --- /etc/hosts -------------------------------------------------------------
n=0
{
  cat "$base_hosts"
  if [ -r "$dir/hosts" ]; then
    echo
    echo "# From /var/identity/hosts (vmflow):"
    while IFS= read -r line || [ -n "$line" ]; do
      trimmed=${line#"${line%%[![:space:]]*}"}
      [ -z "$trimmed" ] || [ "${trimmed:0:1}" = "#" ] && continue
      addr=${trimmed%%[[:space:]]*}
      names=${trimmed#"$addr"}
      if { [[ $addr =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]] || [[ $addr =~ ^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$ ]]; } &&
        [[ $names =~ [^[:space:]] ]]; then
        echo "$trimmed"
        n=$((n + 1))
      else
        say "skipping a line of $dir/hosts: not an address followed by names: $trimmed" >&2
      fi
    done <"$dir/hosts"
  fi
} >"$out/hosts.tmp" && chmod 0644 "$out/hosts.tmp" && mv -f "$out/hosts.tmp" "$out/hosts" || exit 1
say "hosts: $n line(s) from $dir/hosts"

# --- CA certificates --------------------------------------------------------
certs=0
extra=""
if [ -r "$dir/ca-certificates.pem" ]; then
  # Only whole BEGIN/END CERTIFICATE blocks go in.
  extra=$(awk '
    /^-----BEGIN CERTIFICATE-----[[:space:]]*$/ { inblock = 1; block = "" }
    inblock { block = block $0 "\n" }
    /^-----END CERTIFICATE-----[[:space:]]*$/ && inblock { printf "%s", block; inblock = 0 }
  ' "$dir/ca-certificates.pem")
  certs=$(printf '%s' "$extra" | grep -c -- '-----END CERTIFICATE-----')
  if [ "$certs" -eq 0 ]; then
    say "no complete certificate in $dir/ca-certificates.pem: none added" >&2
  fi
fi
{
  cat "$base_cas"
  if [ -n "$extra" ]; then
    echo
    echo "# From /var/identity/ca-certificates.pem (vmflow):"
    printf '%s\n' "$extra"
  fi
} >"$out/ca-certificates.crt.tmp" && chmod 0644 "$out/ca-certificates.crt.tmp" &&
  mv -f "$out/ca-certificates.crt.tmp" "$out/ca-certificates.crt" || exit 1
say "CA certificates: $certs added from $dir/ca-certificates.pem"
exit 0
