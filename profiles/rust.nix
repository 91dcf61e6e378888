# rust: rustup, plus the C toolchain and pkg-config that linking and many
# -sys crates need.
#
# No toolchain is baked into the image: run `rustup default stable` once;
# toolchains live in ~/.rustup and ~/.cargo, on /var. nixpkgs' rustup makes
# the toolchains it downloads run on NixOS; nix-ld covers other prebuilt
# binaries (cargo-binstall and the like).
{ lib, pkgs, ... }:
{
  imports = [ ./modules/nix-ld.nix ];

  environment.systemPackages = [
    pkgs.rustup
    pkgs.gcc
    pkgs.pkg-config
    pkgs.gnumake
    pkgs.openssl.dev
  ];
  # So openssl-sys and friends find the headers without extra setup.
  environment.variables.PKG_CONFIG_PATH = lib.mkDefault "/run/current-system/sw/lib/pkgconfig";
  environment.pathsToLink = [ "/lib/pkgconfig" ];
}
