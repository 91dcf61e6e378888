# Egress block (not a profile): imported by claude.nix and open-code.nix.
#
# Connections *from* the VM (and from its containers) to private, shared,
# loopback, link-local, multicast and reserved networks are refused at once
# (ICMP admin-prohibited), so an agent cannot reach the host's LAN, other
# VMs, the cloud metadata address (169.254.169.254) or internal services.
# The networks (options below): 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10,
# 127.0.0.0/8 (off the loopback interface), 169.254.0.0/16,
# 172.16.0.0/12, 192.0.0.0/24, 192.168.0.0/16, 198.18.0.0/15, 224.0.0.0/4,
# 240.0.0.0/4; IPv6 ::1/128 (off loopback), fc00::/7, fe80::/10 and the
# IPv4-mapped form (::ffff:a.b.c.d) of every IPv4 network. What still goes
# through:
#   - replies: anything conntrack sees as established/related (SSH from the
#     host into the VM keeps working);
#   - DNS (port 53, UDP and TCP) to the VM's own resolvers only: the ones
#     in `vmflow.egress.resolvers` (default networking.nameservers) and the
#     ones systemd-resolved was given (/var/identity/gateway or DHCP), read
#     from /run/systemd/resolve/resolv.conf into the sets dns4/dns6 at boot
#     and whenever that file changes. Port 53 on any other private host is
#     refused like everything else there;
#   - DHCP (from the privileged client ports 68 and 546 to 67 and 547), so
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
# `systemctl restart vmflow-egress-allow.service vmflow-egress-dns.service`.
#
# Docker: root in the VM can delete this table, and a member of the docker
# group is root in effect (`docker run --privileged --net=host ...`). With
# the docker profile `user` is in that group, so the block stops an agent
# only by accident, not against intent. The build warns about it (below).
{ config, lib, pkgs, ... }:
let
  cfg = config.vmflow.egress;
  table = "vmflow-egress";

  str = s: "\"${s}\"";
  # `elements = { }` is not valid nft: leave the line out for an empty list.
  elements = l: lib.optionalString (l != [ ]) "elements = { ${lib.concatStringsSep ", " l} }";

  isIPv6 = a: lib.hasInfix ":" a;

  # 10.0.0.0/8 -> ::ffff:10.0.0.0/104: the same network as an IPv4-mapped
  # IPv6 network.
  mapped = cidr:
    let
      parts = lib.splitString "/" cidr;
      prefix = if lib.length parts == 2 then lib.toInt (lib.elemAt parts 1) else 32;
    in
    "::ffff:${lib.head parts}/${toString (96 + prefix)}";

  blocked6 = cfg.blockedIPv6 ++ map mapped cfg.blockedIPv4;

  dnsFile = "/run/systemd/resolve/resolv.conf";

  scriptUnit = name: file: pkgs.writeShellScript name ''
    PATH=${lib.makeBinPath [ pkgs.nftables pkgs.coreutils ]}
    ${builtins.readFile file}
  '';
  allowCommand = "${scriptUnit "vmflow-egress-allow" ./scripts/egress-allow.sh} ${lib.escapeShellArg cfg.allowListFile} ${lib.escapeShellArg "inet ${table}"}";
  dnsCommand = "${scriptUnit "vmflow-egress-dns" ./scripts/egress-dns.sh} ${dnsFile} ${lib.escapeShellArg "inet ${table}"}";

  # Loads a file into sets of the table: at boot, again whenever
  # nftables.service recreates the table (partOf), and when the file changes.
  loaderUnits = name: description: file: command: after: {
    services."vmflow-egress-${name}" = {
      inherit description;
      wantedBy = [ "multi-user.target" ];
      requires = [ "nftables.service" ];
      after = [ "nftables.service" "local-fs.target" ] ++ after;
      partOf = [ "nftables.service" ];
      before = [ "network-online.target" ];
      unitConfig.RequiresMountsFor = [ (dirOf file) ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = command;
      };
    };
    paths."vmflow-egress-${name}-watch" = {
      description = "Watch ${file}";
      wantedBy = [ "multi-user.target" ];
      pathConfig = {
        PathChanged = file;
        Unit = "vmflow-egress-${name}-reload.service";
      };
    };
    services."vmflow-egress-${name}-reload" = {
      description = "${description} (again, the file changed)";
      after = [ "vmflow-egress-${name}.service" ];
      serviceConfig = {
        Type = "oneshot";
        ExecStart = command;
      };
    };
  };

  ruleset = ''
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
    set dns4 {
      type ipv4_addr
      flags interval
      auto-merge
      ${elements (lib.filter (a: !isIPv6 a) cfg.resolvers)}
    }
    set dns6 {
      type ipv6_addr
      flags interval
      auto-merge
      ${elements (lib.filter isIPv6 cfg.resolvers)}
    }
    set blocked4 {
      type ipv4_addr
      flags interval
      ${elements cfg.blockedIPv4}
    }
    set blocked6 {
      type ipv6_addr
      flags interval
      ${elements blocked6}
    }

    chain egress {
      ct state established,related accept
      udp dport 53 ip daddr @dns4 accept
      tcp dport 53 ip daddr @dns4 accept
      udp dport 53 ip6 daddr @dns6 accept
      tcp dport 53 ip6 daddr @dns6 accept
      udp sport 68 udp dport 67 accept
      udp sport 546 udp dport 547 accept
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
in
{
  options.vmflow.egress = {
    blockedIPv4 = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [
        "0.0.0.0/8" # "this network"
        "10.0.0.0/8" # RFC 1918
        "100.64.0.0/10" # shared address space (carrier-grade NAT)
        "127.0.0.0/8" # loopback: only reached off the `lo` interface, i.e. a trick
        "169.254.0.0/16" # link-local, with the cloud metadata address 169.254.169.254
        "172.16.0.0/12" # RFC 1918
        "192.0.0.0/24" # IETF protocol assignments
        "192.168.0.0/16" # RFC 1918
        "198.18.0.0/15" # benchmarking
        "224.0.0.0/4" # multicast
        "240.0.0.0/4" # reserved, and the broadcast address
      ];
      description = "IPv4 networks the VM may not open connections to. Their IPv4-mapped IPv6 forms are blocked too.";
    };
    blockedIPv6 = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [
        "::1/128" # loopback, off the `lo` interface
        "fc00::/7" # unique local
        "fe80::/10" # link-local
      ];
      description = "IPv6 networks the VM may not open connections to (the IPv4-mapped forms of blockedIPv4 are added).";
    };
    resolvers = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = config.networking.nameservers;
      defaultText = lib.literalExpression "config.networking.nameservers";
      description = ''
        DNS servers the VM may query on port 53 even in a blocked network,
        besides the ones systemd-resolved was given at run time (from
        /var/identity/gateway or DHCP; loaded from ${dnsFile}).
      '';
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
      content = ruleset;
    };

    # The agent runs as `user`; in the docker group it is root in effect and
    # can delete the table. Said at build time (see the header).
    warnings = lib.optional
      (config.virtualisation.docker.enable && lib.elem "docker" (config.users.users.user.extraGroups or [ ]))
      "vmflow: the egress block (claude / open-code) is combined with the docker profile: `user` is in the docker group, which is root in effect, so an agent can remove the nftables table inet ${table}. Leave out docker if the block must hold.";

    systemd = lib.mkMerge [
      (loaderUnits "allow" "Load the egress allow-list into nftables" cfg.allowListFile allowCommand [ ])
      (loaderUnits "dns" "Let DNS through to the resolvers systemd-resolved was given" dnsFile dnsCommand [ "systemd-resolved.service" ])
    ];
  };
}
