# python: uv, and a system python3 that uv picks up.
#
# uv keeps its caches and the Pythons it downloads (`uv python install`)
# under ~/.cache/uv and ~/.local/share/uv, on /var. Those Pythons, and
# manylinux wheels, are built for other distributions: nix-ld lets them run.
{ pkgs, ... }:
{
  imports = [ ./modules/nix-ld.nix ];

  environment.systemPackages = [
    pkgs.uv
    pkgs.python3
  ];
}
