# Identity and /var layout at boot, for core.nix (not a profile).
#
# One image serves many VMs, so nothing VM-specific is in it: each VM's
# identity is on its own /var disk, in /var/identity, and the root
# filesystem and /etc stay read-only (modules/read-only-root.nix).
#
# scripts/identity.sh runs in the initrd, as vmflow-identity.service, once
# /var is mounted on /sysroot/var and before NixOS' activation and the
# switch to the real root, i.e. before systemd (PID 1) of the running
# system starts. It writes only below /var and the kernel's hostname:
#   - creates /var/home, /var/root, /var/identity{,/ssh} and each normal
#     user's home under /var/home (first boot), the sources of the /home and
#     /root bind mounts;
#   - checks /var/identity/machine-id, making and saving one if it is
#     missing or malformed;
#   - sets the kernel's hostname from /var/identity/hostname ("vmflow" if
#     missing or invalid);
#   - makes /var/identity/authorized_keys and the SSH host keys acceptable
#     to sshd's StrictModes.
#
# machine-id: /etc/machine-id in the (read-only) /etc overlay is a symlink
# to /var/identity/machine-id, so every VM booted from the same image reads
# its own. systemd opens /etc/machine-id through the link when it starts;
# the file is always valid by then (see above), so systemd neither makes a
# transient id nor treats the boot as a first boot. Not a kernel parameter
# (systemd.machine_id=): that would be one id per image, or per libvirt
# definition, and not on /var where the journal and the rest of the VM's
# state are.
#
# hostname: the image has no /etc/hostname (core.nix sets
# networking.hostName = ""), and systemd leaves a hostname that is already
# set alone when none is configured, so the name set in the initrd stays.
# It is a transient hostname for hostnamectl; modules/network.nix stops
# DHCP from replacing it.
#
# SSH host keys need nothing here beyond the permissions: core.nix points
# services.openssh.hostKeys at /var/identity/ssh and NixOS' sshd units
# generate missing ones.
{ config, lib, pkgs, ... }:
let
  # Every normal user whose home is under /home gets it on /var/home, owned
  # by numeric ids (the initrd has no account database). A user without a
  # fixed uid or group gid is left to userborn's tmpfiles rule in stage 2.
  gidOf = u: config.users.groups.${u.group}.gid or null;
  homes = lib.filter
    (u: u.isNormalUser && lib.hasPrefix "/home/" u.home && u.uid != null && gidOf u != null)
    (lib.attrValues config.users.users);
  homeArgs = lib.concatMap (u: [ ("/var" + u.home) "${toString u.uid}:${toString (gidOf u)}" ]) homes;

  script = pkgs.writeText "vmflow-identity.sh" (builtins.readFile ./scripts/identity.sh);
in
{
  # bash and coreutils are in the systemd initrd's /bin already; stated
  # because the script needs them.
  boot.initrd.systemd.initrdBin = [ pkgs.bash pkgs.coreutils ];
  boot.initrd.systemd.storePaths = [ "${script}" ];

  boot.initrd.systemd.services.vmflow-identity = {
    description = "vmflow: /var layout and identity from /var/identity";
    wantedBy = [ "initrd.target" ];
    after = [ "initrd-fs.target" ];
    before = [ "initrd-nixos-activation.service" "initrd.target" ];
    unitConfig.RequiresMountsFor = [ "/sysroot/var" ];
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
      ExecStart = "/bin/bash ${script} /sysroot ${lib.escapeShellArgs homeArgs}";
    };
  };

  # mkForce: newer nixpkgs put an empty placeholder file here for an
  # immutable /etc; this link replaces it. "direct-symlink" (as 25.05's
  # userborn.nix uses for /etc/passwd): the entry is one link straight to
  # the file on /var, not a link into /etc/static and the store. Without an
  # /etc overlay, setup-etc.pl makes the same single link for this mode.
  environment.etc."machine-id" = lib.mkForce {
    source = "/var/identity/machine-id";
    mode = "direct-symlink";
  };
}
