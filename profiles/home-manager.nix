# home-manager: home-manager for `user`, as a NixOS module.
#
# The home-manager flake input (release branch matching the pinned NixOS) is
# passed to modules as `inputs` by flake.nix. The configuration is built into
# the image; the home-manager-user service applies it to /var/home/user at
# every boot. A file it would replace is kept as <file>.before-home-manager.
#
# Configure `user`'s home below, e.g. programs.starship.enable = true;
{ inputs, ... }:
{
  imports = [ inputs.home-manager.nixosModules.home-manager ];

  home-manager = {
    useGlobalPkgs = true;
    useUserPackages = true;
    backupFileExtension = "before-home-manager";

    users.user = { ... }: {
      home.stateVersion = "25.05";

      programs.bash.enable = true;
      programs.readline.enable = true;
      programs.git.enable = true;
    };
  };
}
