# claude: the Claude Code CLI.
#
# Not baked into the image: the unit vmflow-npm-claude-<user>.service runs
# `npm install -g @anthropic-ai/claude-code` into each normal user's
# ~/.npm-global (on /var) when `claude` is not there, with its own timeout
# and retries (modules/npm-cli.nix). The npm package ships a
# native executable for other distributions; nix-ld lets it run.
#
# Imports the egress block: the VM cannot open connections to private,
# link-local (cloud metadata) and other special-purpose networks except
# those listed in /var/identity/egress-allow, and DNS goes only to its own
# resolvers (modules/egress-block.nix). The public internet, Anthropic's
# API included, stays reachable. Not against root: with the docker profile
# the agent's account is root in effect (README.md, Profiles).
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
