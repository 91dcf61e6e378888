# podman: Podman, with distrobox, buildah and skopeo.
#
# Rootless for `user` and `admin` (subordinate uid/gid ranges are assigned);
# their containers and images live in ~/.local/share/containers, on /var.
# Root's live in /var/lib/containers. Works next to the docker profile
# (no docker-compatible socket or `docker` alias is installed).
{ pkgs, ... }:
{
  virtualisation.containers.enable = true;
  virtualisation.podman = {
    enable = true;
    defaultNetwork.settings.dns_enabled = true;
  };

  users.users.user.autoSubUidGidRange = true;
  users.users.admin.autoSubUidGidRange = true;

  environment.systemPackages = [
    pkgs.distrobox
    pkgs.buildah
    pkgs.skopeo
    pkgs.podman-compose
  ];
}
