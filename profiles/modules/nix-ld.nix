# Run prebuilt Linux binaries (not a profile).
#
# NixOS has no /lib64/ld-linux-x86-64.so.2, so binaries built for other
# distributions do not start. nix-ld puts a loader there that finds
# libraries in the Nix store. Needed for what profiles fetch at run time:
# the native claude and opencode executables npm installs, uv's managed
# Pythons and manylinux wheels, toolchains rustup downloads.
{ pkgs, ... }:
{
  programs.nix-ld = {
    enable = true;
    libraries = [
      pkgs.stdenv.cc.cc.lib # libstdc++, libgcc_s
      pkgs.zlib
      pkgs.openssl
      pkgs.curl
      pkgs.xz
      pkgs.zstd
      pkgs.bzip2
      pkgs.libffi
      pkgs.ncurses
      pkgs.sqlite
      pkgs.expat
      pkgs.util-linux # libuuid, libmount
    ];
  };
}
