# Command-line tools installed from npm at first login (not a profile).
#
#   vmflow.npmCli.<name> = { package = "<npm package>"; command = "<binary>"; };
#
# For each entry, a login-shell hook (/etc/profile) runs, for normal users
# (uid >= 1000) only, `vmflow-npm-install <package> <command>` when <command>
# is not found. The package goes into the user's own npm prefix,
# ~/.npm-global, which is on /var (homes are /var/home/*), so it is installed
# once per VM and user and survives reboots and image upgrades; the tools
# can update themselves there. A failed install (no network yet, say) does
# not block the login and is retried at the next one. Set
# VMFLOW_SKIP_NPM_INSTALL=1 to skip the hooks.
#
# Why a prefix per user and not one shared: a prefix `user` could write and
# `admin` ran from would let `user` plant code that admin (sudo) executes.
#
# Why not packaged with Nix: these CLIs move fast and update themselves;
# the profile pins Node, not the tool.
{ config, lib, pkgs, ... }:
let
  cfg = config.vmflow.npmCli;

  installer = pkgs.writeShellScriptBin "vmflow-npm-install" ''
    PATH=${lib.makeBinPath [ pkgs.nodejs pkgs.coreutils pkgs.util-linux ]}:$PATH
    ${builtins.readFile ./scripts/npm-install.sh}
  '';

  hook = name: tool: ''
    # ${name}: install ${tool.package} on first login
    if [ "$(id -u)" -ge 1000 ] && [ -z "''${VMFLOW_SKIP_NPM_INSTALL-}" ] \
      && ! command -v ${lib.escapeShellArg tool.command} >/dev/null 2>&1; then
      vmflow-npm-install ${lib.escapeShellArg tool.package} ${lib.escapeShellArg tool.command} || true
    fi
  '';
in
{
  imports = [ ./nix-ld.nix ];

  options.vmflow.npmCli = lib.mkOption {
    default = { };
    description = "npm packages installed into ~/.npm-global at first login.";
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

    environment.loginShellInit = lib.concatStrings (lib.mapAttrsToList hook cfg);
  };
}
