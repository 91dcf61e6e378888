# docker: the Docker daemon.
#
# `user` is in the docker group (which is root-equivalent inside the VM;
# the VM is the boundary). Images, containers and volumes live in
# /var/lib/docker, i.e. on the /var disk, so they survive reboots and image
# upgrades and are part of /var snapshots.
{ ... }:
{
  virtualisation.docker = {
    enable = true;
    daemon.settings = {
      data-root = "/var/lib/docker"; # Docker's default, stated: it must be on /var
      log-driver = "journald";
    };
    autoPrune = {
      enable = true;
      dates = "weekly";
    };
  };

  users.users.user.extraGroups = [ "docker" ];
}
