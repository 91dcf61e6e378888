{
  description = "vmflow's offline test flake: profile sets to qcow2 images, without nixpkgs";

  outputs = { self }:
    let
      system = "x86_64-linux";
      profiles = import ./profiles.nix;
      # An "image" for a profile set: a small qcow2 made with the host's
      # qemu-img (so it builds only without nix's sandbox), with the profile
      # list and the user the builder ran as written beside it. `broken` in
      # the list makes the build fail. VMFLOW_TEST_STAMP (read with
      # --impure) makes a new derivation, for tests that must really build.
      # The NixOS system an image boots stands in as a second derivation
      # the image links to as `toplevel`, as the real images do.
      mkSystem = profiles: derivation {
        name = "vmflow-test-system-${builtins.concatStringsSep "-" profiles}";
        inherit system;
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        args = [ "-c" "mkdir -p $out && echo $name > $out/init" ];
      };
      mkImage = { profiles, system ? "x86_64-linux" }:
        derivation {
          name = "vmflow-test-image-${builtins.concatStringsSep "-" profiles}";
          inherit system;
          toplevel = mkSystem profiles;
          builder = "/bin/sh";
          PATH = "/usr/bin:/bin";
          profileList = builtins.concatStringsSep " " profiles;
          stamp = builtins.getEnv "VMFLOW_TEST_STAMP";
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
            ln -s $toplevel $out/toplevel
            id -un > $out/builder
          '' ];
        };
    in {
      lib = { inherit profiles mkImage; };
      packages.${system} = builtins.mapAttrs (name: _: mkImage { profiles = [ "core" name ]; }) profiles;
    };
}
