# The read-only root (not a profile; imported by core.nix).
#
# The image's root filesystem (LABEL=nixos) is mounted `ro` and nothing in
# the VM ever writes to it. What NixOS 25.05 needs for that:
#
#   - systemd in the initrd. /etc, /var, /nix/store and /nix/var are
#     mounted there, and the activation script runs there, chrooted into
#     /sysroot with IN_NIXOS_SYSTEMD_STAGE1=true, before systemd starts.
#   - /etc as an immutable overlay: an erofs image of environment.etc from
#     the store, mounted read-only on /etc in the initrd. Nothing copies
#     files into /etc at boot.
#   - accounts from userborn instead of the perl activation script: it runs
#     as a service early in stage 2 and keeps passwd/group/shadow in
#     /var/lib/nixos (on /var), which /etc/{passwd,group,shadow} link to.
#   - no switch-to-configuration in the image: a VM changes software by
#     getting a new image (vmflow upgrade), never by switching in place.
#   - nothing in activation that writes to /: see `system.activationScripts`
#     below; /bin/sh, /usr/bin/env and the ELF loader links are baked into
#     the image instead (lib/root-skeleton.nix, made by flake.nix).
#
# These follow nixpkgs' nixos/modules/profiles/perlless.nix as of 25.05,
# which sets boot.initrd.systemd.enable, system.etc.overlay.enable and
# services.userborn.enable (earlier releases: systemd.sysusers.enable and
# system.switch.enable = false). The profile itself is not imported: it also
# sets system.forbiddenDependenciesRegexes = [ "perl" ], which fails the
# build of any image with git (dev, home-manager) in it, and it only trims
# packages otherwise (installer tools, lesspipe, info pages). It leaves
# /bin/sh and /usr/bin/env to activation, because its root is writable.
#
# What stays writable: /var (the var disk), /run, /tmp and /dev (RAM), and
# /nix/store and /nix/var through overlays whose upper layer is the tmpfs
# on /nix/.rw-store (core.nix). /home and /root are /var/home and
# /var/root. /etc is read-only: the machine-id and hostname come from
# /var/identity (modules/identity.nix).
{ config, lib, pkgs, ... }:
let
  # The ELF loader paths, computed as nixpkgs' config/ldso.nix does.
  libDir = pkgs.stdenv.hostPlatform.libDir; # lib64 on x86_64
  ldsoBasename = builtins.unsafeDiscardStringContext
    (lib.last (lib.splitString "/" pkgs.stdenv.cc.bintools.dynamicLinker));

  envTarget =
    if config.environment.usrbinenv != null
    then config.environment.usrbinenv
    else "${pkgs.coreutils}/bin/env"; # systemd refuses an empty /usr

  links =
    {
      "/bin/sh" = config.environment.binsh;
      "/usr/bin/env" = envTarget;
    }
    # stub-ld (the default) or nix-ld (python, rust, claude, open-code).
    // lib.optionalAttrs (config.environment.ldso != null) {
      "/${libDir}/${ldsoBasename}" = config.environment.ldso;
    }
    // lib.optionalAttrs (pkgs.stdenv.hostPlatform.isx86_64 && config.environment.ldso32 != null) {
      "/lib/ld-linux.so.2" = config.environment.ldso32;
    };

  layout = import ../lib/root-skeleton.nix {
    mountPoints = map (fs: fs.mountPoint) (lib.attrValues config.fileSystems);
    inherit links;
  };

  skeleton = pkgs.runCommand "vmflow-root-skeleton" { } (''
    mkdir -p $out
  ''
  + lib.concatMapStrings (d: "mkdir -p $out${lib.escapeShellArg d}\n") layout.dirs
  + lib.concatStrings (lib.mapAttrsToList
    (path: target: "ln -s ${lib.escapeShellArg "${target}"} $out${lib.escapeShellArg path}\n")
    links));
in
{
  # --- what perlless.nix sets (see above) -----------------------------------

  boot.initrd.systemd.enable = true;

  system.etc.overlay = {
    enable = true;
    mutable = false;
  };

  services.userborn = {
    enable = true;
    # The default with an immutable /etc; stated because it must be on /var.
    passwordFilesLocation = "/var/lib/nixos";
  };

  system.switch.enable = false;

  # --- activation must not write to / ---------------------------------------

  # These two snippets create /bin/sh and /usr/bin/env on the root
  # filesystem at every boot (25.05: config/shells-environment.nix and
  # system/activation/activation-script.nix). The links are in the image
  # instead, pointing at the same store paths; nixpkgs' own appliance image
  # test blanks usrbinenv the same way.
  #
  # The ELF loader needs nothing here: in 25.05 config/ldso.nix makes
  # /lib64/ld-linux-x86-64.so.2 with systemd-tmpfiles rules (`d /lib64`,
  # `L+ <link> - - - - <environment.ldso>`), not an activation snippet, and
  # those rules find the baked-in link already right and write nothing.
  system.activationScripts.binsh = lib.mkForce "";
  system.activationScripts.usrbinenv = lib.mkForce "";

  # --- the skeleton, for flake.nix's image builder --------------------------

  # make-disk-image `contents`: one entry per top-level directory.
  system.build.vmflowRootSkeleton = skeleton;
  system.build.vmflowRootContents = map
    (e: { source = "${skeleton}/${e.name}"; target = "/${e.name}"; inherit (e) mode; })
    layout.entries;
}
