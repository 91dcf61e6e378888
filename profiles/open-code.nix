# open-code: the OpenCode CLI.
#
# Like claude: installed at first login with `npm install -g opencode-ai`
# into ~/.npm-global when `opencode` is missing (modules/npm-cli.nix), run
# through nix-ld, and the egress block applies (modules/egress-block.nix).
#
# A default configuration is written to ~/.config/opencode/config.json at
# login when that file does not exist; edit it freely, it is never
# overwritten. It turns off the self-updater and session sharing.
{ pkgs, ... }:
let
  defaultConfig = pkgs.writeText "opencode-config.json" (builtins.toJSON {
    "$schema" = "https://opencode.ai/config.json";
    autoupdate = false;
    share = "disabled";
  });
in
{
  imports = [
    ./modules/egress-block.nix
    ./modules/npm-cli.nix
  ];

  vmflow.npmCli.opencode = {
    package = "opencode-ai";
    command = "opencode";
  };

  environment.systemPackages = [
    pkgs.nodejs
    pkgs.git
    pkgs.ripgrep
  ];

  environment.loginShellInit = ''
    # open-code: a default configuration, once
    if [ "$(id -u)" -ge 1000 ]; then
      vmflow_oc_dir="''${XDG_CONFIG_HOME:-$HOME/.config}/opencode"
      if [ ! -e "$vmflow_oc_dir/config.json" ]; then
        mkdir -p "$vmflow_oc_dir" && install -m 0644 ${defaultConfig} "$vmflow_oc_dir/config.json"
      fi
      unset vmflow_oc_dir
    fi
  '';
}
