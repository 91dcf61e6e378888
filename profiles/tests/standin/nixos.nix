# A stand-in for nixpkgs' lib.nixosSystem, for tests on machines that
# cannot download nixpkgs (see README.md here). It runs the real module
# system (lib.evalModules of the real nixpkgs lib) over the profiles'
# modules, with:
#
#   - declarations, typed as in NixOS 25.05, of the options the tests look
#     at: fileSystems (options default [ "defaults" ], merged as lists),
#     environment.etc (with the hosts file and CA bundle NixOS puts there),
#     networking.nftables.tables, networking.nameservers,
#     users.users, virtualisation.docker.enable, assertions, warnings,
#     nix.enable, system.nixos.release;
#   - every other option undeclared and loosely typed (loose.nix): a
#     misspelt NixOS option is NOT caught here; README.md's option table is
#     the check for those;
#   - `pkgs` a stub: packages are fake store paths, writers return fake
#     derivations. Nothing can be built from it.
#   - modulesPath: stand-ins for the nixpkgs modules profiles import
#     (profiles/qemu-guest.nix).
#
# Returns what nixosSystem returns, as far as flake.nix uses it:
# { config; options; pkgs; }.
lib:
{ modules, specialArgs ? { }, ... }:
let
  inherit (lib) mkOption types;
  loose = import ./loose.nix lib;

  fakePath = name: "/nix/store/00000000000000000000000000000000-${name}";
  drv = name:
    let
      self = {
        type = "derivation";
        inherit name;
        pname = name;
        version = "2.40";
        outPath = fakePath name;
        drvPath = fakePath "${name}.drv";
        out = self;
        lib = drv "${name}-lib";
        dev = drv "${name}-dev";
        bin = drv "${name}-bin";
        meta = { };
        passthru = { };
      };
    in
    self;

  packages = [
    "bash" "bat" "btop" "buildah" "bzip2" "coreutils" "curl" "distrobox" "dosfstools"
    "e2fsprogs" "expat" "fd" "file" "findutils" "fzf" "gawk" "gcc" "gh" "git" "gnugrep" "gnumake" "gnused"
    "htop" "jq" "less" "libffi" "lsof" "man-pages" "mtools" "ncdu" "ncurses" "nftables"
    "nodejs" "openssl" "pkg-config" "podman-compose" "python3" "qemu-utils" "ripgrep"
    "rsync" "rustup" "shellcheck" "skopeo" "sqlite" "strace" "tree" "unzip" "util-linux"
    "uv" "wget" "xz" "yq-go" "zip" "zlib" "zstd" "bashInteractive" "readline" "nix"
  ];

  pkgs = lib.genAttrs packages drv // rec {
    inherit lib;
    path = ./pkgs-path;
    system = "x86_64-linux";
    runtimeShell = "${drv "bash"}/bin/bash";
    stdenv = {
      hostPlatform = {
        inherit system;
        isx86_64 = true;
        isLinux = true;
        isDarwin = false;
        libDir = "lib64";
        efiArch = "x64";
      };
      isLinux = true;
      isDarwin = false;
      isx86_64 = true;
      cc = {
        cc = drv "gcc-unwrapped";
        bintools.dynamicLinker = "${drv "glibc"}/lib/ld-linux-x86-64.so.2";
      };
    };
    buildPackages = pkgs;
    # The text is kept (as `text`), so tests can run what a module writes.
    writeText = name: text: drv name // { inherit text; };
    writeTextDir = name: text: drv name // { inherit text; };
    writeScript = name: text: drv name // { inherit text; };
    writeShellScript = name: text: drv name // { inherit text; };
    writeShellScriptBin = name: text: drv name // { inherit text; };
    runCommand = name: env: _script: drv name // (env.passthru or { }) // { passthru = env.passthru or { }; };
    runCommandLocal = runCommand;
    # pkgs.formats.<f> { }: what home-manager's modules declare options with.
    formats = lib.genAttrs [ "ini" "iniWithGlobalSection" "gitIni" "json" "yaml" "yaml_1_1" "yaml_1_2" "toml" "keyValue" "elixirConf" "hocon" "lua" "php" "javaProperties" "libconfig" "xml" "plist" "pythonVars" "nixConf" "cdn" "systemd" "pkl" ]
      (f: _args: {
        type = loose;
        lib.types = lib.genAttrs [ "atom" "value" "listOf" "attrsOf" ] (_: loose) // {
          listOf = _: loose;
          attrsOf = _: loose;
        };
        generate = name: _value: drv name;
      });
  };

  utils = {
    escapeSystemdPath = s: lib.replaceStrings [ "/" "-" " " ] [ "-" "\\x2d" "\\x20" ] (lib.removePrefix "/" s);
  };

  declared = {
    freeformType = types.lazyAttrsOf loose;

    options = {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      warnings = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };

      fileSystems = mkOption {
        default = { };
        type = types.attrsOf (types.submodule ({ name, ... }: {
          freeformType = types.lazyAttrsOf loose;
          options = {
            mountPoint = mkOption {
              type = types.str;
              default = name;
            };
            device = mkOption {
              type = types.nullOr types.str;
              default = null;
            };
            fsType = mkOption {
              type = types.str;
              default = "auto";
            };
            # As NixOS 25.05 (tasks/filesystems.nix): merged from every
            # module, ["defaults"] when nobody sets it.
            options = mkOption {
              type = types.nonEmptyListOf types.nonEmptyStr;
              default = [ "defaults" ];
            };
          };
        }));
      };

      environment.etc = mkOption {
        default = { };
        type = types.attrsOf (types.submodule ({ name, ... }: {
          freeformType = types.lazyAttrsOf loose;
          options = {
            enable = mkOption {
              type = types.bool;
              default = true;
            };
            target = mkOption {
              type = types.str;
              default = name;
            };
            source = mkOption { type = types.path; };
            text = mkOption {
              type = types.nullOr types.lines;
              default = null;
            };
            mode = mkOption {
              type = types.str;
              default = "symlink";
            };
          };
        }));
      };

      networking.nameservers = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
      # As NixOS 25.05 (services/networking/nftables.nix).
      networking.nftables.tables = mkOption {
        default = { };
        type = types.attrsOf (types.submodule ({ name, ... }: {
          options = {
            enable = mkOption {
              type = types.bool;
              default = true;
            };
            name = mkOption {
              type = types.str;
              default = name;
            };
            family = mkOption {
              type = types.enum [ "ip" "ip6" "inet" "arp" "bridge" "netdev" ];
            };
            content = mkOption {
              type = types.lines;
              default = "";
            };
          };
        }));
      };

      virtualisation.docker.enable = mkOption {
        type = types.bool;
        default = false;
      };

      users.users = mkOption {
        default = { };
        type = types.attrsOf (types.submodule ({ name, config, ... }: {
          freeformType = types.lazyAttrsOf loose;
          options = {
            name = mkOption {
              type = types.str;
              default = name;
            };
            isNormalUser = mkOption {
              type = types.bool;
              default = false;
            };
            uid = mkOption {
              type = types.nullOr types.int;
              default = null;
            };
            group = mkOption {
              type = types.str;
              default = if config.isNormalUser then "users" else "";
            };
            home = mkOption {
              type = types.str;
              default = if config.isNormalUser then "/home/${name}" else "/var/empty";
            };
            extraGroups = mkOption {
              type = types.listOf types.str;
              default = [ ];
            };
          };
        }));
      };

      nix.enable = mkOption {
        type = types.bool;
        default = true;
      };
      nix.package = mkOption {
        type = types.raw;
        default = drv "nix";
      };

      # What home-manager's NixOS module reads (nixos/default.nix).
      fonts.fontconfig.enable = mkOption {
        type = types.bool;
        default = true;
      };
      i18n.glibcLocales = mkOption {
        type = types.raw;
        default = drv "glibc-locales";
      };

      # As nixos/modules/misc/version.nix: from the lib (lib/.version).
      system.nixos.release = mkOption {
        type = types.str;
        default = lib.trivial.release;
      };
    };

    config._module.args = { inherit pkgs utils; };
    # What NixOS 25.05 puts in /etc that profiles read back: the hosts file
    # (config/networking.nix, from networking.hosts) and the CA bundle
    # (security/ca.nix, from the cacert package).
    config.environment.etc =
      let bundle = "${drv "nss-cacert"}/etc/ssl/certs/ca-bundle.crt";
      in {
        hosts.source = pkgs.writeText "hosts" "127.0.0.1 localhost\n::1 localhost\n";
        "ssl/certs/ca-certificates.crt".source = bundle;
        "ssl/certs/ca-bundle.crt".source = bundle;
        "pki/tls/certs/ca-bundle.crt".source = bundle;
      };
  };

  eval = lib.evalModules {
    class = "nixos";
    specialArgs = { modulesPath = ./modules; } // specialArgs;
    modules = [ declared ] ++ modules;
  };
in
{
  inherit (eval) config options;
  inherit pkgs;
}
