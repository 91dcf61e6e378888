# Egress block (not a profile): imported by claude.nix and open-code.nix.
#
# Connections *from* the VM (and from its containers) to private and
# link-local networks are refused at once (ICMP admin-prohibited), so an
# agent cannot reach the host's LAN, other VMs or internal services. What
# still goes through:
#   - replies: anything conntrack sees as established/related (SSH from the
#     host into the VM keeps working);
#   - DNS (port 53, UDP and TCP) to any resolver, and DHCP (67, 547) so
#     leases renew with the private DHCP server;
#   - IPv6 router/neighbour discovery;
#   - loopback, and traffic to local container bridges (docker*, br-*,
#     podman*, cni*), so the VM still reaches its own containers;
#   - the CIDRs listed in /var/identity/egress-allow (one a line, `#`
#     comments), loaded into the sets allow4/allow6 at boot and again
#     whenever the file changes.
#
# Everything lives in its own nftables table, `inet vmflow-egress`, next to
# NixOS' firewall table; it filters the output hook (the VM's own sockets)
# and the forward hook (Docker containers, whose traffic is routed).
# Inspect with `nft list table inet vmflow-egress` (the counters show what
# was refused); reload by hand with
# `systemctl restart vmflow-egress-allow.service`.
{ config, lib, pkgs, ... }:
let
  cfg = config.vmflow.egress;
  table = "vmflow-egress";

  str = s: "\"${s}\"";
  # `elements = { }` is not valid nft: leave the line out for an empty list.
  elements = l: lib.optionalString (l != [ ]) "elements = { ${lib.concatStringsSep ", " l} }";

  loader = pkgs.writeShellScript "vmflow-egress-allow" ''
    PATH=${lib.makeBinPath [ pkgs.nftables pkgs.coreutils ]}
    ${builtins.readFile ./scripts/egress-allow.sh}
  '';
  loadCommand = "${loader} ${lib.escapeShellArg cfg.allowListFile} ${lib.escapeShellArg "inet ${table}"}";
in
{
  options.vmflow.egress = {
    blockedIPv4 = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ "10.0.0.0/8" "172.16.0.0/12" "192.168.0.0/16" ];
      description = "IPv4 networks the VM may not open connections to.";
    };
    blockedIPv6 = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ "fc00::/7" "fe80::/10" ];
      description = "IPv6 networks the VM may not open connections to.";
    };
    allowListFile = lib.mkOption {
      type = lib.types.str;
      default = "/var/identity/egress-allow";
      description = "File of CIDRs (one a line) that are let through despite the block.";
    };
    localInterfaces = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ "docker*" "br-*" "podman*" "cni*" ];
      description = "Interfaces (nft wildcards allowed) whose traffic is local to the VM and never blocked.";
    };
  };

  config = {
    networking.nftables.enable = true;

    networking.nftables.tables.${table} = {
      family = "inet";
      content = ''
        set allow4 {
          type ipv4_addr
          flags interval
          auto-merge
        }
        set allow6 {
          type ipv6_addr
          flags interval
          auto-merge
        }
        set blocked4 {
          type ipv4_addr
          flags interval
          ${elements cfg.blockedIPv4}
        }
        set blocked6 {
          type ipv6_addr
          flags interval
          ${elements cfg.blockedIPv6}
        }

        chain egress {
          ct state established,related accept
          udp dport 53 accept
          tcp dport 53 accept
          udp dport { 67, 547 } accept
          icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept
          ip daddr @allow4 accept
          ip6 daddr @allow6 accept
          ip daddr @blocked4 counter reject with icmpx type admin-prohibited
          ip6 daddr @blocked6 counter reject with icmpx type admin-prohibited
        }

        chain output {
          type filter hook output priority filter; policy accept;
          oifname "lo" accept
          ${lib.concatMapStringsSep "\n  " (i: "oifname ${str i} accept") cfg.localInterfaces}
          jump egress
        }

        chain forward {
          type filter hook forward priority filter; policy accept;
          ${lib.concatMapStringsSep "\n  " (i: "oifname ${str i} accept") cfg.localInterfaces}
          jump egress
        }
      '';
    };

    # Fill the allow sets once the table exists; nftables.service recreating
    # the table (a reload) restarts this too, so the sets never stay empty.
    systemd.services.vmflow-egress-allow = {
      description = "Load the egress allow-list into nftables";
      wantedBy = [ "multi-user.target" ];
      requires = [ "nftables.service" ];
      after = [ "nftables.service" "local-fs.target" ];
      partOf = [ "nftables.service" ];
      before = [ "network-online.target" ];
      unitConfig.RequiresMountsFor = [ "/var" ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = loadCommand;
      };
    };

    # Editing the file applies it.
    systemd.paths.vmflow-egress-allow-watch = {
      description = "Watch the egress allow-list";
      wantedBy = [ "multi-user.target" ];
      pathConfig = {
        PathChanged = cfg.allowListFile;
        Unit = "vmflow-egress-allow-reload.service";
      };
    };
    systemd.services.vmflow-egress-allow-reload = {
      description = "Reload the egress allow-list into nftables";
      after = [ "vmflow-egress-allow.service" ];
      serviceConfig = {
        Type = "oneshot";
        ExecStart = loadCommand;
      };
    };
  };
}
