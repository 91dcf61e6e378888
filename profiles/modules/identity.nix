# Identity and /var layout at boot, for core.nix (not a profile).
#
# scripts/identity.sh runs from boot.postBootCommands, i.e. in stage 2
# after NixOS' activation and before systemd (PID 1) starts. At that point
# /var is mounted (the initrd mounted it) and / and /etc are the fresh tmpfs
# activation just filled. It:
#   - creates /var/home, /var/root, /var/identity{,/ssh} and each normal
#     user's home under /var/home (first boot), before systemd bind-mounts
#     /var/home on /home and /var/root on /root;
#   - copies /var/identity/machine-id to /etc/machine-id (making and saving
#     one on first boot), so systemd starts with the VM's own id;
#   - writes /var/identity/hostname to /etc/hostname and the kernel;
#   - makes /var/identity/authorized_keys acceptable to sshd's StrictModes.
# SSH host keys need nothing here: core.nix points services.openssh.hostKeys
# at /var/identity/ssh and the sshd unit generates missing ones.
{ config, lib, pkgs, ... }:
let
  # Every normal user whose home is under /home gets it on /var/home.
  homes = lib.filter (u: u.isNormalUser && lib.hasPrefix "/home/" u.home) (lib.attrValues config.users.users);
  owner = u: "${if u.uid != null then toString u.uid else u.name}:${u.group}";
  homeArgs = lib.concatMap (u: [ ("/var" + u.home) (owner u) ]) homes;

  identity = pkgs.writeShellScript "vmflow-identity" ''
    PATH=${lib.makeBinPath [ pkgs.coreutils ]}
    ${builtins.readFile ./scripts/identity.sh}
  '';
in
{
  boot.postBootCommands = lib.mkBefore ''
    ${identity} ${lib.escapeShellArgs homeArgs}
  '';
}
