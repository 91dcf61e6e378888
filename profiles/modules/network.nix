# The VM's address, from /var/identity (not a profile; imported by core.nix).
#
# vmflow's create writes /var/identity/static-ip (one line, an IPv4 address
# with its prefix, e.g. 192.168.122.50/24) and /var/identity/gateway (one
# line; may be empty: then the network's first address, 192.168.122.1 in
# the example) when the VM gets a fixed address. Without static-ip the VM
# uses DHCP.
#
# vmflow-network.service runs scripts/network.sh before systemd-networkd
# starts. It writes /run/systemd/network/10-vmflow.network (RAM; nothing
# in the image changes) for the VM's ethernet card: the static address,
# the gateway, and the gateway as DNS server, or DHCP. Either way DHCP may
# not replace the hostname from /var/identity. The file sorts before
# NixOS' own 99-ethernet-default-dhcp.network (networking.useDHCP in
# core.nix), so it wins; that one only applies if this service failed.
#
# Changing the files takes effect at the next boot (or run
# `systemctl restart vmflow-network && networkctl reload`).
{ lib, pkgs, ... }:
let
  script = pkgs.writeShellScript "vmflow-network" ''
    PATH=${lib.makeBinPath [ pkgs.coreutils ]}
    ${builtins.readFile ./scripts/network.sh}
  '';
in
{
  systemd.services.vmflow-network = {
    description = "vmflow: network settings from /var/identity (static address or DHCP)";
    wantedBy = [ "systemd-networkd.service" "multi-user.target" ];
    wants = [ "network-pre.target" ];
    before = [ "systemd-networkd.service" "network-pre.target" "shutdown.target" ];
    conflicts = [ "shutdown.target" ];
    unitConfig = {
      # networkd starts early (it has no default dependencies either); this
      # only needs /var, which the initrd mounted.
      DefaultDependencies = false;
      RequiresMountsFor = [ "/var/identity" ];
    };
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
      ExecStart = "${script} /var/identity /run/systemd/network/10-vmflow.network";
    };
  };
}
