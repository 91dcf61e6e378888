# podman: Podman, with distrobox, buildah and skopeo.
#
# Rootless for `user` and `admin` (subordinate uid/gid ranges are assigned);
# their containers and images live in ~/.local/share/containers, on /var.
# Root's live in /var/lib/containers. Works next to the docker profile
# (no docker-compatible socket or `docker` alias is installed).
#
# The ranges are written into /etc/subuid and /etc/subgid here. /etc is
# read-only (core) and the accounts come from userborn, not from the perl
# script that used to fill these files for autoSubUidGidRange. The ranges
# are the ones autoSubUidGidRange gives (100000 + (uid - 1000) * 65536),
# so container files already on /var keep their owners.
{ config, lib, pkgs, ... }:
let
  rootless = [ "admin" "user" ];
  ranges = lib.concatMapStrings
    (name: "${name}:${toString (100000 + (config.users.users.${name}.uid - 1000) * 65536)}:65536\n")
    rootless;
in
{
  virtualisation.containers.enable = true;
  virtualisation.podman = {
    enable = true;
    defaultNetwork.settings.dns_enabled = true;
  };

  # mkForce: should NixOS write these files itself, the same ranges win.
  environment.etc.subuid = lib.mkForce { text = ranges; };
  environment.etc.subgid = lib.mkForce { text = ranges; };

  environment.systemPackages = [
    pkgs.distrobox
    pkgs.buildah
    pkgs.skopeo
    pkgs.podman-compose
  ];
}
