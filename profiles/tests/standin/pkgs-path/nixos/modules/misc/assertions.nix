# Stand-in for nixpkgs' nixos/modules/misc/assertions.nix, which
# home-manager's modules/modules.nix imports from pkgs.path: the two
# options, declared as there.
{ lib, ... }:
{
  options = {
    assertions = lib.mkOption {
      type = lib.types.listOf lib.types.unspecified;
      internal = true;
      default = [ ];
    };
    warnings = lib.mkOption {
      internal = true;
      default = [ ];
      type = lib.types.listOf lib.types.str;
    };
  };
}
