{
  description = "vmflow's offline test flake: profile sets to qcow2 images, without nixpkgs";

  outputs = { self }:
    let
      system = "x86_64-linux";
      profiles = import ./profiles.nix;
      # An "image" for a profile set: a small qcow2 made with the host's
      # qemu-img (Debian's nix builds without a sandbox), with the profile
      # list written beside it. `broken` in the list makes the build fail.
      mkImage = { profiles, system ? "x86_64-linux" }:
        derivation {
          name = "vmflow-test-image-${builtins.concatStringsSep "-" profiles}";
          inherit system;
          builder = "/bin/sh";
          PATH = "/usr/bin:/bin";
          profileList = builtins.concatStringsSep " " profiles;
          args = [ "-c" ''
            set -e
            mkdir -p $out
            echo "building image for: $profileList"
            for p in $profileList; do
              [ "$p" = broken ] && { echo "profile broken cannot be built" >&2; exit 3; }
              echo "adding profile $p"
            done
            qemu-img create -q -f qcow2 $out/nixos.qcow2 64M
            echo "$profileList" > $out/profiles
          '' ];
        };
    in {
      lib = { inherit profiles mkImage; };
      packages.${system} = builtins.mapAttrs (name: _: mkImage { profiles = [ "core" name ]; }) profiles;
    };
}
