# claude: the Claude Code CLI.
#
# Not baked into the image: at a user's first login a login-shell hook runs
# `npm install -g @anthropic-ai/claude-code` into ~/.npm-global (on /var)
# when `claude` is not found (modules/npm-cli.nix). The npm package ships a
# native executable for other distributions; nix-ld lets it run.
#
# Imports the egress block: the VM cannot open connections to private or
# link-local networks except those listed in /var/identity/egress-allow
# (modules/egress-block.nix). The public internet, Anthropic's API
# included, stays reachable.
{ pkgs, ... }:
{
  imports = [
    ./modules/egress-block.nix
    ./modules/npm-cli.nix
  ];

  vmflow.npmCli.claude = {
    package = "@anthropic-ai/claude-code";
    command = "claude";
  };

  environment.systemPackages = [
    pkgs.nodejs
    pkgs.git
    pkgs.ripgrep
  ];
}
