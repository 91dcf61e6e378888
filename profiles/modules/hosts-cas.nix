# /etc/hosts and the CA bundle, from the image and /var/identity (not a
# profile; imported by core.nix).
#
# vmflow writes /var/identity/hosts (extra /etc/hosts lines) and
# /var/identity/ca-certificates.pem (extra CA certificates): create's hosts
# and ca_certs, changed by `vmflow configure`. /etc is read-only and the
# same for every VM of an image, so /etc/hosts and the CA bundles
# (/etc/ssl/certs/ca-certificates.crt, /etc/ssl/certs/ca-bundle.crt,
# /etc/pki/tls/certs/ca-bundle.crt, which SSL_CERT_FILE, NIX_SSL_CERT_FILE,
# curl and the rest read) are links to files in /run/vmflow that
# vmflow-hosts-cas.service writes early at boot: the file NixOS built into
# the image, then the VM's own additions.
#
# NixOS' own entries stay defined but are not installed (enable = false),
# so every module that reads their source (nftables' ruleset check, restart
# triggers) still gets the image's file.
{ config, lib, pkgs, ... }:
let
  run = "/run/vmflow";
  baseHosts = config.environment.etc.hosts.source;
  baseCAs = config.environment.etc."ssl/certs/ca-certificates.crt".source;
  script = pkgs.writeShellScript "vmflow-hosts-cas" ''
    PATH=${lib.makeBinPath [ pkgs.coreutils pkgs.gawk pkgs.gnugrep ]}
    ${builtins.readFile ./scripts/hosts-cas.sh}
  '';
  cas = [ "ssl/certs/ca-certificates.crt" "ssl/certs/ca-bundle.crt" "pki/tls/certs/ca-bundle.crt" ];
  link = target: file: {
    inherit target;
    source = "${run}/${file}";
    mode = "direct-symlink";
  };
in
{
  environment.etc = {
    hosts.enable = false;
    "vmflow-hosts" = link "hosts" "hosts";
  } // lib.listToAttrs (lib.concatMap
    (target: [
      (lib.nameValuePair target { enable = false; })
      (lib.nameValuePair "vmflow-${lib.replaceStrings [ "/" ] [ "-" ] target}" (link target "ca-certificates.crt"))
    ])
    cas);

  systemd.services.vmflow-hosts-cas = {
    description = "vmflow: /etc/hosts and the CA bundle, with the additions in /var/identity";
    wantedBy = [ "sysinit.target" ];
    before = [ "sysinit.target" "nss-lookup.target" "network-pre.target" "shutdown.target" ];
    wants = [ "nss-lookup.target" "network-pre.target" ];
    conflicts = [ "shutdown.target" ];
    unitConfig = {
      DefaultDependencies = false;
      RequiresMountsFor = [ "/var/identity" ];
    };
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
      ExecStart = "${script} /var/identity ${run} ${baseHosts} ${baseCAs}";
    };
  };
}
