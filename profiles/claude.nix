# claude: the Claude Code CLI.
#
# Not baked into the image: the unit vmflow-npm-claude-<user>.service runs
# `npm install -g @anthropic-ai/claude-code` into each normal user's
# ~/.npm-global (on /var) when `claude` is not there, with its own timeout
# and retries (modules/npm-cli.nix). The npm package ships a
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
