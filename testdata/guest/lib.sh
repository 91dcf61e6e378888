# shellcheck shell=bash
# Helpers shared by build.sh and smoke.sh (sourced, not run).

# as_root CMD...: run CMD as root, through sudo when we are not root.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_update_once: refresh the package lists, at most once per run.
APT_UPDATED=0
apt_update_once() {
	if [ "$APT_UPDATED" -eq 0 ]; then
		as_root apt-get update -qq
		APT_UPDATED=1
	fi
}

# ensure_pkgs PKG...: apt-get install whichever of the Debian packages are not installed.
ensure_pkgs() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	echo "installing: ${missing[*]}" >&2
	apt_update_once
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# apt_show PKG...: set APT_RECORDS to the package-list records of the candidate
# versions of PKGs, refreshing the lists once if one is not known yet (fresh machine).
# shellcheck disable=SC2034 # APT_RECORDS is read by the caller
apt_show() {
	APT_RECORDS=$(apt-cache show --no-all-versions "$@" 2>/dev/null) && return
	apt_update_once
	APT_RECORDS=$(apt-cache show --no-all-versions "$@")
}

# record_field PKG FIELD: FIELD of PKG's record in the apt_show output on stdin.
record_field() {
	awk -v pkg="Package: $1" -v f="$2: " '
		$0 == pkg { inpkg = 1 }
		$0 == "" { inpkg = 0 }
		inpkg && index($0, f) == 1 { print substr($0, length(f) + 1); exit }'
}
