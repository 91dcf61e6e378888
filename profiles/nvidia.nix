# nvidia: the NVIDIA driver and container toolkit, for a GPU passed through
# to the VM.
#
# REQUIRES docker, in two ways:
#   - this file imports ./docker.nix, so an image with nvidia always has
#     Docker (profiles.nix also lists `requires = [ "docker" ]`, so the
#     flake and vmflow add the docker profile by name);
#   - an assertion fails the build if Docker was switched off anyway
#     (say virtualisation.docker.enable = lib.mkForce false in another
#     module), since the toolkit is only wired into Docker here.
#
# Containers get GPUs through CDI:
#   docker run --rm --device nvidia.com/gpu=all ubuntu nvidia-smi
#
# The driver is unfree; only NVIDIA's packages are allowed below.
{ config, lib, ... }:
{
  imports = [ ./docker.nix ];

  assertions = [
    {
      assertion = config.virtualisation.docker.enable;
      message = "vmflow profile `nvidia` requires the `docker` profile: the NVIDIA container toolkit is set up for Docker, but virtualisation.docker.enable is false.";
    }
  ];

  nixpkgs.config.allowUnfreePredicate = pkg:
    let name = lib.getName pkg; in
    lib.hasPrefix "nvidia" name || lib.hasPrefix "libnvidia" name || lib.hasPrefix "cuda" name;

  # Selects the NVIDIA kernel driver; no X server is started.
  services.xserver.videoDrivers = [ "nvidia" ];
  hardware.graphics.enable = true;

  hardware.nvidia = {
    package = config.boot.kernelPackages.nvidiaPackages.stable;
    # The open kernel modules need a Turing (RTX 20xx, T4) or newer GPU;
    # set this to false for older ones (e.g. V100, P100).
    open = lib.mkDefault true;
    nvidiaSettings = false;
    nvidiaPersistenced = true; # keeps the GPU initialised without a display
  };

  # Generates the CDI spec for the GPUs at boot.
  hardware.nvidia-container-toolkit.enable = true;
  virtualisation.docker.daemon.settings.features.cdi = true;
}
