#!/usr/bin/env bash
# Variant (b) of bench/libvirt: N x (overlay, define, undefine, delete) the
# way shell-based tools do it, one command per operation:
#
#   qemu-img create -f qcow2 -b BASE -F qcow2 DIR/bench-ov-i   (overlay)
#   virsh define /dev/stdin <<XML                              (minimal XML)
#   virsh undefine bench-vm-i
#   rm DIR/bench-ov-i
#
# With --vol, the volume operations go through libvirt's pool instead:
#   virsh vol-create-as POOL bench-ov-i SIZE --format qcow2 \
#         --backing-vol BASE --backing-vol-format qcow2
#   virsh vol-delete bench-ov-i --pool POOL
#
#   virsh.sh [--vol] POOL BASE_PATH [N]
# The overlays live in BASE_PATH's directory (the pool's). Env: URI
# (default qemu:///system), KERNEL (default BASE_PATH).
set -euo pipefail
vol=0
if [ "${1:-}" = --vol ]; then vol=1; shift; fi
pool=$1 base=$2 n=${3:-20}
uri=${URI:-qemu:///system}
kernel=${KERNEL:-$base}
dir=$(dirname "$base")

for i in $(seq 1 "$n"); do
  ov=$dir/bench-ov-$i vm=bench-vm-$i
  if [ $vol = 1 ]; then
    virsh -q -c "$uri" vol-create-as "$pool" "bench-ov-$i" 1G --format qcow2 \
      --backing-vol "$base" --backing-vol-format qcow2 >/dev/null
  else
    qemu-img create -q -f qcow2 -b "$base" -F qcow2 "$ov"
  fi
  virsh -q -c "$uri" define /dev/stdin >/dev/null <<XML
<domain type='qemu'>
  <name>$vm</name>
  <memory unit='MiB'>1024</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>$kernel</kernel>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$ov'/>
      <target dev='vda' bus='virtio'/>
      <readonly/>
    </disk>
  </devices>
</domain>
XML
  virsh -q -c "$uri" undefine "$vm" >/dev/null
  if [ $vol = 1 ]; then
    virsh -q -c "$uri" vol-delete "bench-ov-$i" --pool "$pool" >/dev/null
  else
    rm "$ov"
  fi
done
