# Inbound ports from /var/identity (not a profile; imported by core.nix).
#
# The firewall is NixOS' own (nftables, table inet nixos-fw): SSH (22) is
# open in the image, because vmflow ssh and the tasks need it. Every other
# inbound port is the VM's own: vmflow writes /var/identity/tcp-ports and
# /var/identity/udp-ports (one port or range a line; create's tcp_ports and
# udp_ports, changed by `vmflow configure`), and vmflow-ports.service loads
# them into two sets of the firewall's table that its input-allow chain
# accepts. Nothing in the image changes, so one image serves VMs with
# different ports.
#
# The service runs at boot after nftables.service, again whenever
# nftables.service reloads the ruleset (which empties the sets), and when
# a file changes.
{ lib, pkgs, ... }:
let
  table = "inet nixos-fw";
  script = pkgs.writeShellScript "vmflow-ports" ''
    PATH=${lib.makeBinPath [ pkgs.nftables pkgs.coreutils ]}
    ${builtins.readFile ./scripts/ports.sh}
  '';
  command = "${script} /var/identity ${lib.escapeShellArg table}";
in
{
  # The table NixOS' nftables firewall makes (family inet, as it sets it);
  # the sets go before its own content, so that its chains can name them.
  networking.nftables.tables."nixos-fw".family = "inet";
  networking.nftables.tables."nixos-fw".content = lib.mkBefore ''
    set vmflow_tcp {
      comment "vmflow: the VM's inbound TCP ports (/var/identity/tcp-ports)"
      type inet_service
      flags interval
      auto-merge
    }
    set vmflow_udp {
      comment "vmflow: the VM's inbound UDP ports (/var/identity/udp-ports)"
      type inet_service
      flags interval
      auto-merge
    }
  '';
  networking.firewall.extraInputRules = ''
    tcp dport @vmflow_tcp accept comment "vmflow: /var/identity/tcp-ports"
    udp dport @vmflow_udp accept comment "vmflow: /var/identity/udp-ports"
  '';

  systemd.services.vmflow-ports = {
    description = "vmflow: open the inbound ports in /var/identity";
    wantedBy = [ "multi-user.target" ];
    requires = [ "nftables.service" ];
    after = [ "nftables.service" ];
    partOf = [ "nftables.service" ];
    before = [ "network-online.target" ];
    unitConfig.RequiresMountsFor = [ "/var/identity" ];
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
      ExecStart = command;
      ExecReload = command;
    };
  };
  systemd.paths.vmflow-ports = {
    description = "Watch /var/identity for port changes";
    wantedBy = [ "multi-user.target" ];
    pathConfig = {
      PathChanged = [ "/var/identity/tcp-ports" "/var/identity/udp-ports" ];
      Unit = "vmflow-ports-reload.service";
    };
  };
  systemd.services.vmflow-ports-reload = {
    description = "vmflow: open the inbound ports in /var/identity (again, a file changed)";
    after = [ "vmflow-ports.service" ];
    serviceConfig = {
      Type = "oneshot";
      ExecStart = command;
    };
  };
}
