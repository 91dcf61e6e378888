# core: the profile every vmflow image has.
#
# ---------------------------------------------------------------------------
# Disks and labels (see ../docs/disks.md)
#
#   vda  the boot disk, attached READ-ONLY by vmflow; made by the flake with
#        nixpkgs' make-disk-image (GPT, partitionTableType = "efi"):
#          partition 1  FAT32, label ESP    systemd-boot, kernels, initrds
#          partition 2  ext4,  label nixos  the image: /nix/store, /nix/var
#   vdb  the /var disk: one ext4 filesystem on the whole disk, label var.
#        All state lives here; nothing else survives a reboot.
#
# Running layout
#
#   /                 tmpfs, rebuilt at every boot by NixOS' activation
#   /nix/.ro-image    LABEL=nixos, mounted read-only (never written)
#   /nix/.rw-store    tmpfs: the writable layers of the two overlays below
#   /nix/store        overlay: the image's store + a RAM layer
#   /nix/var          overlay: the image's Nix database/profiles + a RAM layer
#   /var              LABEL=var, ext4, mounted in the initrd (neededForBoot),
#                     grown with resize2fs at boot when the disk grew
#   /home             bind mount of /var/home
#   /root             bind mount of /var/root
#   /tmp              tmpfs
#   /boot             LABEL=ESP, not mounted (noauto); only firmware reads it
#
# Identity, read from /var/identity at every boot (modules/identity.nix)
#
#   /var/identity/hostname         the hostname (one line); "vmflow" if absent
#   /var/identity/machine-id       32 hex digits; made on first boot if absent;
#                                  copied to /etc/machine-id before systemd
#   /var/identity/authorized_keys  SSH public keys for `admin` and `user`
#                                  (sshd reads it directly; ~/.ssh keys are
#                                  ignored on purpose)
#   /var/identity/ssh/             SSH host keys, generated on first boot
#   /var/identity/egress-allow     CIDRs the egress block lets through, one a
#                                  line (only used by claude / open-code)
#
# Why `/` is a tmpfs and not the image mounted read-only: NixOS 25.05's
# stage 2 remounts `/` read-write and its activation writes /etc, /bin/sh,
# /usr/bin/env and user accounts at every boot. vda is attached read-only,
# so that remount fails and those writes with it. Mounting the image
# read-only underneath a RAM root keeps the image untouched (what is on vda
# is exactly what was built) while activation works as on any NixOS, the
# same way NixOS' own netboot and ISO images run.
#
# Direct kernel boot: pass the kernel and initrd of the build and the
# command line in its `cmdline` file (init=<toplevel>/init plus the
# parameters below). The image must still be attached as vda: it holds
# /nix/store. Only the ESP and the boot loader are skipped.
# ---------------------------------------------------------------------------
{ config, lib, pkgs, modulesPath, ... }:
{
  imports = [
    (modulesPath + "/profiles/qemu-guest.nix")
    ./modules/identity.nix
  ];

  system.stateVersion = "25.05";

  # --- boot -----------------------------------------------------------------

  boot.loader.grub.enable = false;
  boot.loader.systemd-boot = {
    enable = true;
    editor = false;
  };
  # vmflow VMs boot from OVMF's removable-media path (EFI/BOOT/BOOTX64.EFI,
  # which bootctl installs too); no NVRAM variables are written.
  boot.loader.efi.canTouchEfiVariables = false;
  boot.loader.timeout = 1;

  boot.kernelParams = [
    "console=tty0"
    "console=ttyS0,115200n8" # the last console= is /dev/console
  ];
  boot.initrd.kernelModules = [ "overlay" ];
  boot.growPartition = false; # vda is read-only

  # --- filesystems ----------------------------------------------------------

  fileSystems."/" = {
    device = "none";
    fsType = "tmpfs";
    options = [ "mode=0755" ];
  };

  fileSystems."/nix/.ro-image" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
    # noload: never replay a journal on the read-only disk.
    options = [ "ro" "noload" ];
    neededForBoot = true;
    noCheck = true; # fsck would need to write
  };

  fileSystems."/nix/.rw-store" = {
    device = "none";
    fsType = "tmpfs";
    options = [ "mode=0755" ];
    neededForBoot = true;
  };

  # Overlays in the scripted initrd: stage 1 puts /mnt-root in front of
  # lowerdir/upperdir/workdir and creates upperdir/workdir itself.
  fileSystems."/nix/store" = {
    device = "overlay";
    fsType = "overlay";
    options = [
      "lowerdir=/nix/.ro-image/nix/store"
      "upperdir=/nix/.rw-store/store"
      "workdir=/nix/.rw-store/store-work"
    ];
    depends = [ "/nix/.ro-image" "/nix/.rw-store" ];
    neededForBoot = true;
  };

  # The Nix database and profiles of the image (nix-daemon and
  # home-manager's activation need them), writable for this boot only.
  fileSystems."/nix/var" = {
    device = "overlay";
    fsType = "overlay";
    options = [
      "lowerdir=/nix/.ro-image/nix/var"
      "upperdir=/nix/.rw-store/var"
      "workdir=/nix/.rw-store/var-work"
    ];
    depends = [ "/nix/.ro-image" "/nix/.rw-store" ];
    neededForBoot = true;
  };

  fileSystems."/var" = {
    device = "/dev/disk/by-label/var";
    fsType = "ext4";
    neededForBoot = true;
    # Stage 1 runs e2fsck -fp and resize2fs on it before mounting, so a
    # volume grown while the VM was off is filled at the next boot.
    autoResize = true;
  };

  # /var/home and /var/root are created on first boot by modules/identity.nix
  # (before systemd starts, so before these mounts).
  fileSystems."/home" = {
    device = "/var/home";
    fsType = "none";
    options = [ "bind" ];
    depends = [ "/var" ];
  };

  fileSystems."/root" = {
    device = "/var/root";
    fsType = "none";
    options = [ "bind" ];
    depends = [ "/var" ];
  };

  fileSystems."/boot" = {
    device = "/dev/disk/by-label/ESP";
    fsType = "vfat";
    options = [ "ro" "noauto" "nofail" "umask=0077" ];
  };

  boot.tmp.useTmpfs = true;

  # --- users ----------------------------------------------------------------

  # Accounts come from this file alone, rebuilt at every boot; uids are
  # fixed so files on /var keep their owners across image upgrades.
  users.mutableUsers = false;
  # Nobody has a password: logins are SSH keys from /var/identity, which
  # NixOS cannot see at build time, so its "you would be locked out" check
  # has to be switched off.
  users.allowNoPasswordLogin = true;
  users.users.root.hashedPassword = "!";

  users.users.admin = {
    isNormalUser = true;
    uid = 1000;
    description = "vmflow administrator";
    extraGroups = [ "wheel" ];
  };

  users.users.user = {
    isNormalUser = true;
    uid = 1001;
    description = "vmflow user (agents and services run as this account)";
  };

  security.sudo = {
    enable = true;
    wheelNeedsPassword = false;
    execWheelOnly = true;
  };

  # --- ssh ------------------------------------------------------------------

  services.openssh = {
    enable = true;
    openFirewall = true;
    settings = {
      PasswordAuthentication = false;
      KbdInteractiveAuthentication = false;
      PermitRootLogin = "no";
      AllowUsers = [ "admin" "user" ];
    };
    # The keys vmflow gives the VM, plus keys declared in Nix
    # (users.users.<name>.openssh.authorizedKeys). Not ~/.ssh/authorized_keys:
    # a process running as `user` must not be able to grant itself access.
    authorizedKeysFiles = lib.mkForce [
      "/var/identity/authorized_keys"
      "/etc/ssh/authorized_keys.d/%u"
    ];
    # Generated by the sshd unit when missing, i.e. on first boot.
    hostKeys = [
      { type = "ed25519"; path = "/var/identity/ssh/ssh_host_ed25519_key"; }
      { type = "rsa"; bits = 4096; path = "/var/identity/ssh/ssh_host_rsa_key"; }
    ];
  };

  # --- network and firewall -------------------------------------------------

  # The hostname comes from /var/identity/hostname at boot, so none is set
  # here (an empty name leaves /etc/hostname to modules/identity.nix).
  networking.hostName = "";
  networking.useNetworkd = true;
  networking.useDHCP = true;
  services.resolved.enable = true;

  networking.nftables.enable = true;
  networking.firewall = {
    enable = true;
    allowedTCPPorts = [ 22 ];
  };

  # --- guest integration ----------------------------------------------------

  services.qemuGuest.enable = true;

  # A login prompt on the serial console. systemd's getty generator starts
  # one on the kernel console (console=ttyS0) anyway; this states it. Only
  # a Wants= is added: the unit itself is upstream's serial-getty@.service
  # template (which restarts the getty itself).
  systemd.targets.getty.wants = [ "serial-getty@ttyS0.service" ];

  # --- nix inside the VM ----------------------------------------------------

  # The store is the image plus a RAM layer: `nix shell` and friends work for
  # the current boot. Software that should stay belongs in a profile.
  nix.settings.experimental-features = [ "nix-command" "flakes" ];
  nix.channel.enable = false;
  programs.command-not-found.enable = false;
  documentation.nixos.enable = false;

  time.timeZone = "UTC";

  environment.systemPackages = [
    pkgs.e2fsprogs
    pkgs.nftables
    pkgs.curl
  ];
}
