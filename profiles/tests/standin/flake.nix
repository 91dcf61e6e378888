# The stand-in for the `nixpkgs` input in the offline tests (see README.md
# here). The test copies the real nixpkgs lib (lib/, 25.05) next to this
# file and overrides the profiles flake's nixpkgs input with the result.
{
  outputs = { self }:
    let
      lib = import ./lib;
    in
    {
      lib = lib.extend (final: prev: {
        nixosSystem = import ./nixos.nix final;
      });
    };
}
