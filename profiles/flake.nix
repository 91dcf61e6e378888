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

      # The filesystem labels the images use (see README.md): core.nix
      # mounts by them, the image builder below writes the first two, the
      # libvirt plugin's volume_create writes `var`. mkImage checks that
      # core.nix still mounts / and /var by these.
      labels = {
        root = "nixos"; # ext4, partition 2 of the boot disk, mounted ro
        esp = "ESP"; # FAT, partition 1 of the boot disk
        var = "var"; # ext4 on the whole second disk
      };

      # mkImage { profiles = [ "dev" "docker" ]; system = "x86_64-linux"; }
      #
      # `core` and whatever the listed profiles require are added (see
      # lib/resolve.nix); order and duplicates do not matter. Returns a
      # derivation whose output is a directory:
      #
      #   nixos.qcow2   the UEFI disk image (symlink into the store): GPT,
      #                 ESP (label ESP) holding EFI/BOOT/BOOTX64.EFI, and the
      #                 ext4 root filesystem (label nixos)
      #   uki.efi       that EFI/BOOT/BOOTX64.EFI: the unified kernel image
      #   kernel        the kernel, for direct kernel boot
      #   initrd        the initrd, for direct kernel boot
      #   cmdline       the kernel command line for direct kernel boot
      #                 (init=<toplevel>/init and the console parameters;
      #                 the same one the unified kernel image holds)
      #   toplevel      the NixOS system (config.system.build.toplevel)
      #   profiles      the profiles, space separated, sorted
      #
      # and whose passthru has image, uki, kernel, initrd, toplevel,
      # cmdline, profiles and nixos (the evaluated system), e.g.
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

          uki = config.system.build.uki;
          ukiFile = config.system.boot.loader.ukiFile;
          efiBootFile = "BOOT${lib.toUpper pkgs.stdenv.hostPlatform.efiArch}.EFI";

          # After the build VM: make the ESP (partition 1) a FAT filesystem
          # holding only EFI/BOOT/BOOTX64.EFI = the unified kernel image,
          # then convert the raw image to qcow2. Runs in make-disk-image's
          # builder, where $diskImage is the raw image ($out/nixos.img).
          fillEspAndConvert = ''
            PATH=${lib.makeBinPath [ pkgs.coreutils pkgs.findutils pkgs.util-linux pkgs.dosfstools pkgs.mtools pkgs.qemu-utils ]}:$PATH
            export MTOOLS_SKIP_CHECK=1
            espWork=$(mktemp -d)
            eval "$(partx "$diskImage" -o START,SECTORS --nr 1 --pairs)"
            truncate -s "$((SECTORS * 512))" "$espWork/esp.img"
            mkfs.vfat --invariant -i 564d464c -n ${labels.esp} "$espWork/esp.img"
            mkdir -p "$espWork/files/EFI/BOOT"
            cp ${uki}/${ukiFile} "$espWork/files/EFI/BOOT/${efiBootFile}"
            find "$espWork/files" -exec touch --date=2000-01-01 {} +
            (cd "$espWork/files" && mcopy -psvm -i "$espWork/esp.img" ./* ::)
            fsck.vfat -vn "$espWork/esp.img"
            dd if="$espWork/esp.img" of="$diskImage" bs=512 seek="$START" count="$SECTORS" conv=notrunc status=none
            qemu-img convert -f raw -O qcow2 ${lib.optionalString (format == "qcow2-compressed") "-c"} "$diskImage" "$out/nixos.qcow2"
            rm -f "$diskImage"
            echo "file qcow2-image $out/nixos.qcow2" > "$out/nix-support/hydra-build-products"
          '';

          # The image builder of the pinned release itself:
          # nixos/lib/make-disk-image.nix. Its "efi" layout is what core.nix
          # mounts: GPT, partition 1 the ESP (label ESP), partition 2 the
          # ext4 root filesystem labelled `label`. It installs no boot loader
          # here: that would run switch-to-configuration, which the image
          # does not have (system.switch.enable = false). The ESP is filled
          # afterwards instead (fillEspAndConvert). `contents` adds what the
          # read-only root needs besides /nix (mount points, /bin/sh,
          # /usr/bin/env, the ELF loader; modules/read-only-root.nix), and
          # `additionalPaths` the store paths those links point to.
          image = import "${nixpkgs}/nixos/lib/make-disk-image.nix" {
            inherit lib config pkgs diskSize;
            name = "vmflow-disk-${lib.concatStringsSep "-" names}";
            format = "raw"; # converted to qcow2 by fillEspAndConvert
            partitionTableType = "efi";
            label = labels.root;
            installBootLoader = false;
            copyChannel = false;
            contents = config.system.build.vmflowRootContents;
            additionalPaths = [ config.system.build.vmflowRootSkeleton ];
            # The root filesystem is only ever mounted read-only.
            additionalSpace = "256M";
            postVM = fillEspAndConvert;
          };

          kernel = config.system.build.kernel;
          initrd = config.system.build.initialRamdisk;
          toplevel = config.system.build.toplevel;
          cmdline = "init=${toplevel}/init ${toString config.boot.kernelParams}";

          # Labels and read-only mounts (lib/checks.nix); all failures at once.
          failed = builtins.filter (c: !c.assertion)
            (import ./lib/checks.nix { inherit labels; inherit (config) fileSystems; });
        in
        if failed != [ ] then
          throw (lib.concatMapStringsSep "\n" (c: c.message) failed)
        else
        pkgs.runCommandLocal "vmflow-image-${lib.concatStringsSep "-" names}"
          {
            passthru = { inherit image uki kernel initrd toplevel cmdline nixos; profiles = names; };
          }
          ''
            mkdir -p $out
            set -- ${image}/*.qcow2
            if [ "$#" -ne 1 ] || [ ! -e "$1" ]; then
              echo "expected one qcow2 image in ${image}" >&2
              exit 1
            fi
            ln -s "$1" $out/nixos.qcow2
            ln -s ${uki}/${ukiFile} $out/uki.efi
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
        inherit mkImage resolve labels;
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
