# open-code: the OpenCode CLI.
#
# Like claude: `npm install -g opencode-ai` into each normal user's
# ~/.npm-global by the unit vmflow-npm-opencode-<user>.service when
# `opencode` is missing (modules/npm-cli.nix), run through nix-ld, and the
# egress block applies (modules/egress-block.nix).
#
# The same unit writes a default configuration to
# ~/.config/opencode/config.json when that file does not exist; edit it
# freely, it is never overwritten. It turns off the self-updater and
# session sharing.
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
    defaultFiles.".config/opencode/config.json" = defaultConfig;
  };

  environment.systemPackages = [
    pkgs.nodejs
    pkgs.git
    pkgs.ripgrep
  ];
}
