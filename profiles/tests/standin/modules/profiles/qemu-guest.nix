# Stand-in for nixpkgs' nixos/modules/profiles/qemu-guest.nix (kernel
# modules for virtio disks and network); nothing the tests look at.
{ }
