# The one list of vmflow's profiles.
#
# Plain Nix: no nixpkgs, no flake inputs, no paths. Anything can read it
# offline:
#
#   nix-instantiate --eval --strict --json profiles/profiles.nix
#
# Each entry is   name = { file; requires; description; };
#   file         the module, relative to this directory (a string, so the
#                JSON above holds no store paths)
#   requires     other profiles it cannot work without; they are added to an
#                image automatically (`core` is always added and is not
#                listed here)
#   description  one line for listings
#
# flake.nix imports this file; lib/resolve.nix computes the closure of a
# requested list. Adding a profile = a new <name>.nix beside this file and
# one entry here.
{
  core = {
    file = "core.nix";
    requires = [ ];
    description = "always in: users admin/user, key-only sshd, nftables firewall, guest agent, serial console, read-only image + /var disk, identity from /var/identity";
  };
  docker = {
    file = "docker.nix";
    requires = [ ];
    description = "Docker daemon (data on /var/lib/docker), user in the docker group";
  };
  podman = {
    file = "podman.nix";
    requires = [ ];
    description = "Podman (rootless for user), distrobox, buildah, skopeo";
  };
  nvidia = {
    file = "nvidia.nix";
    requires = [ "docker" ];
    description = "NVIDIA driver and container toolkit (GPUs in Docker through CDI)";
  };
  python = {
    file = "python.nix";
    requires = [ ];
    description = "uv and a system python3";
  };
  rust = {
    file = "rust.nix";
    requires = [ ];
    description = "rustup, with a C toolchain for linking";
  };
  dev = {
    file = "dev.nix";
    requires = [ ];
    description = "neovim, tmux, git, ripgrep, fd, jq, htop and other everyday tools";
  };
  home-manager = {
    file = "home-manager.nix";
    requires = [ ];
    description = "home-manager for user, as a NixOS module";
  };
  claude = {
    file = "claude.nix";
    requires = [ ];
    description = "Claude Code CLI, installed from npm by a unit of its own; private and special networks blocked";
  };
  open-code = {
    file = "open-code.nix";
    requires = [ ];
    description = "OpenCode CLI, installed from npm by a unit of its own, with a default config; private and special networks blocked";
  };
}
