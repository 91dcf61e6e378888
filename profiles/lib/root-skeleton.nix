# What the read-only root filesystem of an image must hold besides
# /nix: the directories things get mounted on and a few fixed links.
#
# The root filesystem is mounted read-only, so nothing can create a mount
# point or a link on it at boot: systemd and NixOS' stage 2 only mount onto
# directories that exist, and NixOS' activation would write /bin/sh and
# /usr/bin/env into it (modules/read-only-root.nix turns that off). They are
# made at build time instead: flake.nix hands `entries` to make-disk-image
# as `contents`.
#
# Builtins only, so it evaluates without nixpkgs:
#
#   nix-instantiate --eval --strict --json -E \
#     'import ./profiles/lib/root-skeleton.nix { mountPoints = [ "/" "/var" "/var/lib/x" "/home" ]; links = { "/bin/sh" = "/x/sh"; }; }'
#
# Arguments:
#   mountPoints  every fileSystems mount point of the configuration
#   links        { "/bin/sh" = "<store path>"; ... }: symlinks to create
#
# Result:
#   dirs     directories to create: the mount points that sit on the root
#            filesystem itself (not under another mount, e.g. /var but not
#            /var/lib/x), the API filesystems (/dev /proc /sys /run), /tmp,
#            /etc, /srv (systemd's tmpfiles expects it) and the parents of
#            the links; sorted, each once
#   links    the links, unchanged
#   entries  [ { name; mode; } ]: one per top-level name, with the mode
#            given to it and everything below it ("1777" for tmp, "700"
#            for root, "755" otherwise). The modes are those NixOS' stage 2
#            asks for (install -m … -d), so it finds nothing to change on
#            the read-only disk.
{ mountPoints, links ? { } }:
let
  inherit (builtins) filter any attrNames sort lessThan foldl' elem head match substring stringLength;

  apiDirs = [ "/dev" "/proc" "/sys" "/run" "/tmp" "/etc" "/srv" ];

  # p is strictly below the mount point m (m not /).
  below = m: p: m != "/" && m != p
    && substring 0 (stringLength m + 1) p == m + "/";

  onRoot = p: p != "/" && !(any (m: below m p) mountPoints);

  unique = l: foldl' (acc: x: if elem x acc then acc else acc ++ [ x ]) [ ] l;

  linkParents = map dirOf (attrNames links);

  dirs = sort lessThan (unique (filter onRoot (mountPoints ++ apiDirs) ++ linkParents));

  top = p:
    let m = match "/([^/]+).*" p; in
    if m == null then throw "vmflow: not an absolute path below /: ${p}" else head m;

  modeOf = name:
    if name == "tmp" then "1777"
    else if name == "root" then "700"
    else "755";

  tops = sort lessThan (unique (map top (dirs ++ attrNames links)));
in
{
  inherit dirs links;
  entries = map (name: { inherit name; mode = modeOf name; }) tops;
}
