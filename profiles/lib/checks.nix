# The checks lib.mkImage makes on an evaluated configuration, as
# NixOS-style assertions: [ { assertion; message; } ]. Builtins only, so it
# evaluates without nixpkgs:
#
#   import ./profiles/lib/checks.nix {
#     labels = { root = "nixos"; var = "var"; };
#     fileSystems = config.fileSystems;
#   }
#
# Arguments:
#   labels       { root; var; ... }: the disks' filesystem labels
#                (flake.nix `labels`)
#   fileSystems  config.fileSystems of the image
#   readOnly     mount points that must be mounted read-only: the boot disk
#                is attached read-only, so a read-write mount fails the
#                boot. "/" is the only filesystem of the boot disk that is
#                mounted (the ESP is read by the firmware only).
#
# Read-only means: "ro" is among the mount options, and neither "rw" nor
# "defaults" (which holds rw) is. NixOS merges `options` lists from all
# modules, so one module adding "rw" gives [ "ro" "rw" ], and mount(8)
# applies the last one: that mount is read-write.
{ labels, fileSystems, readOnly ? [ "/" ] }:
let
  inherit (builtins) elem toJSON;

  mountedBy = mountPoint: label:
    (fileSystems.${mountPoint}.device or null) == "/dev/disk/by-label/${label}";

  optionsOf = mountPoint: fileSystems.${mountPoint}.options or [ ];

  readOnlyCheck = mountPoint: {
    assertion = fileSystems ? ${mountPoint}
      && elem "ro" (optionsOf mountPoint)
      && !(elem "rw" (optionsOf mountPoint))
      && !(elem "defaults" (optionsOf mountPoint));
    message = "vmflow: ${mountPoint} must be mounted read-only (the boot disk is attached read-only): its options must hold \"ro\" and neither \"rw\" nor \"defaults\", but they are ${toJSON (optionsOf mountPoint)}";
  };
in
[
  {
    assertion = mountedBy "/" labels.root && mountedBy "/var" labels.var;
    message = "vmflow: core.nix must mount / from LABEL=${labels.root} and /var from LABEL=${labels.var}, the labels of the disks (flake.nix `labels`)";
  }
]
++ map readOnlyCheck readOnly
