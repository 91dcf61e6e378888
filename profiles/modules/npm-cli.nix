# Command-line tools installed from npm (not a profile).
#
#   vmflow.npmCli.<name> = {
#     package = "<npm package>"; command = "<binary>";
#     defaultFiles = { ".config/x/config.json" = <file>; };  # optional
#   };
#
# For each entry and each normal user (admin, user) a unit of its own,
# vmflow-npm-<name>-<user>.service, runs as that user once the network is
# up, at every boot: it copies the default files that are missing, then
# runs `vmflow-npm-install <package> <command>`, which does nothing when
# ~/.npm-global/bin/<command> is there and otherwise installs the package
# (npm, at most VMFLOW_NPM_TIMEOUT = 900 s). The prefix, ~/.npm-global, is
# on /var (homes are /var/home/*), so a tool is installed once per VM and
# user and survives reboots and image upgrades; the tools can update
# themselves there.
#
# A failed install (no network yet, say) is retried by systemd: after 30 s,
# then waiting longer each time up to 15 min, without a limit. Its status:
#   systemctl status vmflow-npm-<name>-<user>    journalctl -u vmflow-npm-<name>-<user>
# The unit is Type=exec with RemainAfterExit: it does not hold up the boot
# (multi-user.target) while npm runs, and shows "active (exited)" once the
# tool is there.
#
# Nothing runs npm in a shell. Not at login: home-manager's
# home-manager-<user>.service runs its setup as a login shell (`bash -el`,
# TimeoutStartSec 5 min, ordered before logins are allowed), so a login
# hook installing there would hold up home-manager, and every login, on a
# slow first boot and then fail. Interactive shells only print a line
# while the tool is still missing.
#
# Why a prefix per user and not one shared: a prefix `user` could write and
# `admin` ran from would let `user` plant code that admin (sudo) executes.
#
# Why not packaged with Nix: these CLIs move fast and update themselves;
# the profile pins Node, not the tool.
{ config, lib, pkgs, ... }:
let
  cfg = config.vmflow.npmCli;

  users = lib.filter (u: u.isNormalUser) (lib.attrValues config.users.users);

  installer = pkgs.writeShellScriptBin "vmflow-npm-install" ''
    PATH=${lib.makeBinPath [ pkgs.nodejs pkgs.coreutils pkgs.util-linux pkgs.bash ]}:$PATH
    ${builtins.readFile ./scripts/npm-install.sh}
  '';

  unitName = name: user: "vmflow-npm-${name}-${user}";

  # Copies the default files that are missing from $HOME; never overwrites.
  defaults = name: tool: pkgs.writeShellScript "vmflow-npm-${name}-defaults" (lib.concatStrings
    (lib.mapAttrsToList
      (rel: file: ''
        [ -e "$HOME"/${lib.escapeShellArg rel} ] || ${pkgs.coreutils}/bin/install -D -m 0644 ${file} "$HOME"/${lib.escapeShellArg rel}
      '')
      tool.defaultFiles));

  unit = name: tool: u: lib.nameValuePair (unitName name u.name) {
    description = "vmflow: ${tool.package} for ${u.name} (npm, into ~/.npm-global)";
    wantedBy = [ "multi-user.target" ];
    wants = [ "network-online.target" ];
    after = [ "network-online.target" ];
    environment = {
      HOME = u.home;
      NPM_CONFIG_PREFIX = "${u.home}/.npm-global";
      VMFLOW_NPM_TIMEOUT = "900";
    };
    unitConfig = {
      RequiresMountsFor = [ u.home ];
      # Retry without giving up (the delay grows, see RestartSteps).
      StartLimitIntervalSec = 0;
    };
    serviceConfig = {
      Type = "exec";
      RemainAfterExit = true;
      User = u.name;
      ExecStartPre = lib.optional (tool.defaultFiles != { }) "${defaults name tool}";
      ExecStart = "${installer}/bin/vmflow-npm-install ${lib.escapeShellArg tool.package} ${lib.escapeShellArg tool.command}";
      Restart = "on-failure";
      RestartSec = "30s";
      RestartSteps = 5;
      RestartMaxDelaySec = "15min";
    };
  };

  # Interactive shells only: what to do while the tool is still missing.
  notice = name: tool: ''
    if ! command -v ${lib.escapeShellArg tool.command} >/dev/null 2>&1; then
      echo "vmflow: ${tool.command} is not installed yet; see: systemctl status ${unitName name "$USER"}" >&2
    fi
  '';
in
{
  imports = [ ./nix-ld.nix ];

  options.vmflow.npmCli = lib.mkOption {
    default = { };
    description = "npm packages installed into each normal user's ~/.npm-global by a unit of their own.";
    type = lib.types.attrsOf (lib.types.submodule {
      options = {
        package = lib.mkOption {
          type = lib.types.str;
          description = "The npm package, e.g. @anthropic-ai/claude-code.";
        };
        command = lib.mkOption {
          type = lib.types.str;
          description = "The command it provides; its absence triggers the install.";
        };
        defaultFiles = lib.mkOption {
          type = lib.types.attrsOf lib.types.path;
          default = { };
          description = "Files copied into the home (path relative to it) when missing, before the install.";
        };
      };
    });
  };

  config = lib.mkIf (cfg != { }) {
    environment.systemPackages = [ pkgs.nodejs installer ];

    # Every shell (login or not) finds what was installed into the prefix.
    environment.extraInit = ''
      if [ -z "''${NPM_CONFIG_PREFIX-}" ]; then
        export NPM_CONFIG_PREFIX="$HOME/.npm-global"
      fi
      case ":$PATH:" in
        *":$NPM_CONFIG_PREFIX/bin:"*) ;;
        *) export PATH="$NPM_CONFIG_PREFIX/bin:$PATH" ;;
      esac
    '';

    # Login shells that are interactive (an SSH session), normal users only.
    # Never the login shells units run (home-manager's `bash -el`).
    environment.loginShellInit = ''
      case $- in
      *i*)
        if [ "$(id -u)" -ge 1000 ]; then
    ${lib.concatStrings (lib.mapAttrsToList notice cfg)}
        fi
        ;;
      esac
    '';

    systemd.services = lib.listToAttrs
      (lib.concatLists (lib.mapAttrsToList (name: tool: map (unit name tool) users) cfg));
  };
}
