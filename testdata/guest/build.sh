#!/usr/bin/env bash
# build.sh OUTDIR: build the vmflow test guest from Debian packages only.
# Writes OUTDIR/vmlinuz, OUTDIR/initrd.img and OUTDIR/manifest (see README.md).
# Cached: exits at once when OUTDIR/manifest records a build of the same inputs.
set -euo pipefail

if [ "$#" -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
# Test packages run at the same time and may all ask for the guest: one
# builds, the others wait and then find it up to date.
exec 9>"$OUT/.build.lock"
flock 9
# shellcheck source=lib.sh
. "$HERE/lib.sh"

# Drivers the guest needs that this kernel builds as modules, in load order.
MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
	virtio_blk failover net_failover virtio_net virtio_console)
# Guest files kept beside this script; they are part of the build inputs.
GUEST_FILES=(init shutdown udhcpc.script image.json)

# resolve: pick the package versions from the apt lists and compute the build
# inputs (INPUTS, listed in the manifest) and their hash KEY.
resolve() {
	apt_show linux-image-cloud-amd64 qemu-guest-agent
	# The kernel metapackage depends on exactly one versioned image package.
	read -r KPKG _ KPKG_VER < <(record_field linux-image-cloud-amd64 Depends <<<"$APT_RECORDS" | tr -d '()')
	KVER=${KPKG#linux-image-}
	case "$KPKG $KPKG_VER" in
	linux-image-*-cloud-amd64\ ?*) ;;
	*) echo "error: unexpected linux-image-cloud-amd64 dependency: $KPKG $KPKG_VER" >&2; exit 1 ;;
	esac
	QGA_VER=$(record_field qemu-guest-agent Version <<<"$APT_RECORDS")
	# qemu-ga is only unpacked, not installed: install its library dependencies
	# here so that ldd can resolve them and we can copy them into the initramfs.
	# (First alternative of each dependency; version constraints dropped.)
	mapfile -t QGA_DEPS < <(record_field qemu-guest-agent Depends <<<"$APT_RECORDS" | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g')
	ensure_pkgs busybox-static "${QGA_DEPS[@]}"
	INPUTS=$(
		echo "kernel-package: $KPKG $KPKG_VER"
		echo "kernel-version: $KVER"
		echo "qemu-guest-agent: $QGA_VER"
		dpkg-query -W -f='${Package}: ${Version}\n' busybox-static "${QGA_DEPS[@]}"
		cd "$HERE" && sha256sum build.sh lib.sh "${GUEST_FILES[@]}"
	)
	KEY=$(sha256sum <<<"$INPUTS" | cut -d' ' -f1)
}

resolve
if [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ] && grep -qx "build-key: $KEY" "$OUT/manifest" 2>/dev/null; then
	echo "guest in $OUT is up to date (kernel $KVER)"
	exit 0
fi
echo "building guest in $OUT (kernel $KVER)"
rm -f "$OUT/manifest" # an interrupted build must not look complete

SCRATCH=$(mktemp -d /tmp/vmflow-guest.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
PKGROOT=$SCRATCH/pkgroot # unpacked Debian packages
ROOT=$SCRATCH/initramfs  # the guest's root filesystem

# --- Fetch and unpack the kernel and the guest agent.
# As root, apt would try (and warn about) dropping to _apt, which cannot write here.
APT_OPTS=()
[ "$(id -u)" -eq 0 ] && APT_OPTS=(-o APT::Sandbox::User=root)
fetch() { (cd "$SCRATCH" && apt-get download -qq "${APT_OPTS[@]}" "$KPKG=$KPKG_VER" "qemu-guest-agent=$QGA_VER"); }
# Stale lists name versions the archive has dropped (the security archive keeps
# only the newest): refresh them and resolve again.
if ! fetch; then
	echo "download failed; refreshing the package lists" >&2
	apt_update_once
	resolve
	fetch
fi
for deb in "$SCRATCH"/*.deb; do
	dpkg-deb -x "$deb" "$PKGROOT"
done
MODDIR=$PKGROOT/lib/modules/$KVER
[ -d "$MODDIR" ] || { echo "error: $KPKG has no lib/modules/$KVER" >&2; exit 1; }

# --- Root filesystem skeleton, busybox and its applet links.
mkdir -p "$ROOT"/{bin,sbin,etc/udhcpc,dev,proc,sys,run,tmp,var,lib/modules,usr/bin,usr/sbin}
cp /bin/busybox "$ROOT/bin/busybox"
while read -r applet; do
	[ -e "$ROOT/$applet" ] || ln -s /bin/busybox "$ROOT/$applet"
done < <(/bin/busybox --list-full)
install -m 0755 "$HERE/init" "$ROOT/init"
install -m 0755 "$HERE/shutdown" "$ROOT/sbin/shutdown"
install -m 0755 "$HERE/udhcpc.script" "$ROOT/etc/udhcpc/default.script"
# What a vmflow image says it is (profiles/flake.nix writes the real one):
# status shows it next to the machine record.
install -D -m 0644 "$HERE/image.json" "$ROOT/etc/vmflow/image.json"

# --- Kernel modules, flattened into /lib/modules/NAME.ko, plus the load order
# for /init. There is no depmod/modprobe: dependencies are the order itself.
: >"$ROOT/lib/modules/load-order"
MODS_PACKED=() MODS_BUILTIN=()
for mod in "${MODULES[@]}"; do
	src=$(find "$MODDIR/kernel" \( -name "$mod.ko" -o -name "$mod.ko.xz" \) -print -quit)
	case "$src" in
	*.ko) cp "$src" "$ROOT/lib/modules/$mod.ko" ;;
	*.ko.xz) # busybox insmod may not decompress; the kernel takes the plain .ko
		ensure_pkgs xz-utils
		xz -dc "$src" >"$ROOT/lib/modules/$mod.ko" ;;
	*)
		if grep -q "/$mod\.ko" "$MODDIR/modules.builtin"; then
			MODS_BUILTIN+=("$mod")
			continue
		fi
		echo "error: module $mod is neither in $KPKG nor built in" >&2
		exit 1 ;;
	esac
	echo "$mod" >>"$ROOT/lib/modules/load-order"
	MODS_PACKED+=("$mod")
done

# --- qemu-ga with every library ldd lists, the dynamic loader included.
install -m 0755 "$PKGROOT/usr/sbin/qemu-ga" "$ROOT/usr/sbin/qemu-ga"
LDD=$(ldd "$PKGROOT/usr/sbin/qemu-ga")
if grep -q 'not found' <<<"$LDD"; then
	echo "error: unresolved qemu-ga libraries:" >&2
	grep 'not found' <<<"$LDD" >&2
	exit 1
fi
mapfile -t LIBS < <(grep -o '/[^ ]*' <<<"$LDD")
for lib in "${LIBS[@]}"; do
	mkdir -p "$ROOT$(dirname "$lib")"
	cp -L "$lib" "$ROOT$lib"
done

# lib_package PATH: "package version" of the installed package shipping library PATH.
# dpkg's database predates merged /usr, so match on the last two path components.
lib_package() {
	local real pkg
	real=$(readlink -f "$1")
	pkg=$(dpkg-query -S "*/$(basename "$(dirname "$real")")/$(basename "$real")" | cut -d: -f1 | head -n1)
	dpkg-query -W -f='${Package} ${Version}' "$pkg"
}

# --- Pack (newc, owned by root, gzip'd) and publish; the manifest goes last.
(cd "$ROOT" && find . | sort | /bin/busybox cpio -o -H newc -R 0:0) | gzip -9n >"$SCRATCH/initrd.img"
cp "$PKGROOT/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
mv "$SCRATCH/initrd.img" "$OUT/initrd.img"
{
	echo "build-key: $KEY"
	echo "$INPUTS"
	echo "modules: ${MODS_PACKED[*]}"
	echo "modules-builtin: ${MODS_BUILTIN[*]:-none}"
	echo "libraries:"
	for lib in "${LIBS[@]}"; do
		echo "  $lib $(lib_package "$lib")"
	done
	echo "initrd-bytes: $(stat -c %s "$OUT/initrd.img")"
	echo "vmlinuz-sha256: $(sha256sum <"$OUT/vmlinuz" | cut -d' ' -f1)"
	echo "initrd-sha256: $(sha256sum <"$OUT/initrd.img" | cut -d' ' -f1)"
} >"$OUT/manifest.tmp"
mv "$OUT/manifest.tmp" "$OUT/manifest"
echo "guest built: $OUT/vmlinuz $OUT/initrd.img ($(stat -c %s "$OUT/initrd.img") bytes)"
