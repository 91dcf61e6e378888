{
  description = "vmflow: immutable NixOS VM images composed from profiles";

  # NixOS 25.05 and the home-manager release made for it. There is no
  # flake.lock in the repository: the first build on a machine with internet
  # access writes one here (profiles/flake.lock); commit it to pin the exact
  # revisions.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";
    home-manager = {
      url = "github:nix-community/home-manager/release-25.05";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs = { self, nixpkgs, home-manager, ... }@inputs:
    let
      # The single list of profiles (plain Nix, readable without nixpkgs).
      catalog = import ./profiles.nix;
      resolve = import ./lib/resolve.nix catalog;

      systems = [ "x86_64-linux" ];
      forSystems = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);

      # Records what an image is made of, in the image and in its name.
      imageModule = names: system: { config, ... }: {
        nixpkgs.hostPlatform = system;
        system.nixos.tags = names;
        environment.etc."vmflow/image.json".text = builtins.toJSON {
          profiles = names;
          nixos = config.system.nixos.release;
        };
      };

      # mkImage { profiles = [ "dev" "docker" ]; system = "x86_64-linux"; }
      #
      # `core` and whatever the listed profiles require are added (see
      # lib/resolve.nix); order and duplicates do not matter. Returns a
      # derivation whose output is a directory:
      #
      #   nixos.qcow2   the UEFI disk image (symlink into the store)
      #   kernel        the kernel, for direct kernel boot
      #   initrd        the initrd, for direct kernel boot
      #   cmdline       the kernel command line for direct kernel boot
      #                 (init=<toplevel>/init and the console parameters)
      #   toplevel      the NixOS system (config.system.build.toplevel)
      #   profiles      the profiles, space separated, sorted
      #
      # and whose passthru has image, kernel, initrd, toplevel, cmdline,
      # profiles and nixos (the evaluated system), e.g.
      #   nix build ./profiles#dev.kernel
      #
      # modules: extra NixOS modules, for one-off changes without a profile.
      mkImage =
        { profiles ? [ ]
        , system ? "x86_64-linux"
        , modules ? [ ]
        , format ? "qcow2"
        , diskSize ? "auto"
        }:
        assert nixpkgs.lib.assertOneOf "format" format [ "qcow2" "qcow2-compressed" ];
        let
          # Sorted: module order changes the order of merged lists (e.g.
          # systemPackages) and so store paths; the same set, asked for in
          # any order, must give the same image. (vmflow's nix plugin sorts
          # the same way.)
          names = builtins.sort builtins.lessThan (resolve profiles);

          nixos = nixpkgs.lib.nixosSystem {
            specialArgs = { inherit inputs; };
            modules =
              map (name: ./. + "/${catalog.${name}.file}") names
              ++ [ (imageModule names system) ]
              ++ modules;
          };
          inherit (nixos) config pkgs;
          lib = nixpkgs.lib;

          # The image builder of the pinned release itself:
          # nixos/lib/make-disk-image.nix. It has been in nixpkgs for years
          # with the same interface, and its "efi" layout is exactly what
          # core.nix mounts (GPT; ESP labelled ESP; ext4 root labelled
          # `label`), and it installs the boot loader by running the
          # system's own switch-to-configuration in a build VM. The newer
          # image.repart / system.build.images machinery would work too but
          # is still changing between releases.
          image = import "${nixpkgs}/nixos/lib/make-disk-image.nix" {
            inherit lib config pkgs format diskSize;
            name = "vmflow-disk-${lib.concatStringsSep "-" names}";
            partitionTableType = "efi";
            label = "nixos";
            installBootLoader = true;
            copyChannel = false;
            # The root filesystem is only ever mounted read-only.
            additionalSpace = "256M";
          };

          kernel = config.system.build.kernel;
          initrd = config.system.build.initialRamdisk;
          toplevel = config.system.build.toplevel;
          cmdline = "init=${toplevel}/init ${toString config.boot.kernelParams}";
        in
        pkgs.runCommandLocal "vmflow-image-${lib.concatStringsSep "-" names}"
          {
            passthru = { inherit image kernel initrd toplevel cmdline nixos; profiles = names; };
          }
          ''
            mkdir -p $out
            set -- ${image}/*.qcow2
            if [ "$#" -ne 1 ] || [ ! -e "$1" ]; then
              echo "expected one qcow2 image in ${image}" >&2
              exit 1
            fi
            ln -s "$1" $out/nixos.qcow2
            ln -s ${kernel}/${config.system.boot.loader.kernelFile} $out/kernel
            ln -s ${initrd}/${config.system.boot.loader.initrdFile} $out/initrd
            ln -s ${toplevel} $out/toplevel
            printf '%s\n' ${lib.escapeShellArg cmdline} > $out/cmdline
            printf '%s\n' ${lib.escapeShellArg (toString names)} > $out/profiles
          '';

      # What lib.profiles shows: name -> { requires; description; file; }.
      profileInfo = builtins.mapAttrs
        (name: p: { inherit (p) file requires description; })
        catalog;
    in
    {
      lib = {
        inherit mkImage resolve;
        profiles = profileInfo;
      };

      # One image per profile (core + that profile + what it requires), and
      # `default` = core alone:
      #   nix build ./profiles#dev        nix build ./profiles
      packages = forSystems (system:
        builtins.mapAttrs (name: _: mkImage { profiles = [ name ]; inherit system; }) catalog
        // { default = mkImage { profiles = [ ]; inherit system; }; });

      # The evaluated systems behind those images, to inspect options:
      #   nix eval ./profiles#nixosConfigurations.dev.config.services.openssh.settings
      nixosConfigurations = builtins.mapAttrs
        (name: _: (mkImage { profiles = [ name ]; }).passthru.nixos)
        catalog;
    };
}
