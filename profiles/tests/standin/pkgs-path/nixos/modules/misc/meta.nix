# Stand-in for nixpkgs' nixos/modules/misc/meta.nix, which home-manager's
# modules/modules.nix imports from pkgs.path: `meta`, loosely typed.
{ lib, ... }:
{
  options.meta = lib.mkOption {
    type = lib.types.lazyAttrsOf (import ../../../../loose.nix lib);
    default = { };
  };
}
