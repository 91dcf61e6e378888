# core: the profile every vmflow image has.
#
# ---------------------------------------------------------------------------
# Disks and labels (see README.md here and ../docs/disks.md)
#
#   vda  the boot disk, attached READ-ONLY by vmflow; made by flake.nix with
#        nixpkgs' make-disk-image (GPT, partitionTableType = "efi"):
#          partition 1  FAT, label ESP      EFI/BOOT/BOOTX64.EFI: the unified
#                                           kernel image (kernel, initrd and
#                                           command line in one EFI program)
#          partition 2  ext4, label nixos   the root filesystem: /nix/store,
#                                           the Nix database, the mount
#                                           points and /bin/sh, /usr/bin/env
#   vdb  the /var disk: one ext4 filesystem on the whole disk (no partition
#        table), label var, as the libvirt plugin's volume_create makes it.
#        All state lives here.
#
# Running layout
#
#   /                 LABEL=nixos, mounted read-only (ro). Never written.
#   /etc              read-only overlay of the configuration's files
#                     (system.etc.overlay, modules/read-only-root.nix)
#   /var              LABEL=var, ext4, mounted in the initrd (neededForBoot)
#                     and grown with resize2fs at boot when the disk grew
#   /home             bind mount of /var/home
#   /root             bind mount of /var/root
#   /tmp              tmpfs
#   /run, /dev        tmpfs / devtmpfs, as on any Linux
#   /nix/.rw-store    tmpfs: the writable layers of the two overlays below
#   /nix/store        overlay: the image's store + a RAM layer, so `nix shell`
#   /nix/var          overlay: the image's Nix database + a RAM layer
#                     works (for one boot) and nix-daemon can run
#
# Nothing outside /var survives a reboot, and nothing can change what is on
# vda. Writes go to /var, /run, /tmp or the RAM layers of /nix only.
#
# Identity, from /var/identity (modules/identity.nix, modules/network.nix)
#
#   /var/identity/hostname         the hostname (one line); "vmflow" if absent
#   /var/identity/machine-id       32 hex digits; made on first boot if absent;
#                                  /etc/machine-id is a link to it
#   /var/identity/authorized_keys  SSH public keys for `admin` and `user`
#                                  (sshd reads it directly; ~/.ssh keys are
#                                  ignored on purpose)
#   /var/identity/ssh/             SSH host keys, generated on first boot
#   /var/identity/static-ip        optional: a fixed IPv4 address/prefix
#   /var/identity/gateway          with static-ip: its gateway (empty: the
#                                  network's first address)
#   /var/identity/egress-allow     CIDRs the egress block lets through, one a
#                                  line (only used by claude / open-code)
#   /var/identity/tcp-ports        inbound TCP ports or ranges opened besides
#   /var/identity/udp-ports        SSH, one a line (modules/ports.nix)
#   /var/identity/resolvers        DNS servers, one address a line, instead
#                                  of the network's (modules/network.nix)
#   /var/identity/hosts            lines added to /etc/hosts
#   /var/identity/ca-certificates.pem  CA certificates added to the system
#                                  bundle (modules/hosts-cas.nix)
#   /var/identity/passwords/admin  the login password of admin and user: a
#   /var/identity/passwords/user   crypt(3) hash (SHA-512, $6$…), or "!" for
#                                  none; made "!" at boot when missing
#
# Boot: the firmware runs EFI/BOOT/BOOTX64.EFI from the ESP, a unified
# kernel image with `init=<toplevel>/init` and the parameters below in it.
# Direct kernel boot: pass the kernel and initrd of the build and the
# command line in its `cmdline` file. The image must still be attached as
# vda: it holds the root filesystem.
# ---------------------------------------------------------------------------
{ config, lib, pkgs, modulesPath, ... }:
{
  imports = [
    (modulesPath + "/profiles/qemu-guest.nix")
    ./modules/read-only-root.nix
    ./modules/identity.nix
    ./modules/network.nix
    ./modules/ports.nix
    ./modules/hosts-cas.nix
  ];

  system.stateVersion = "25.05";

  # --- boot -----------------------------------------------------------------

  # No boot loader: flake.nix puts the unified kernel image
  # (config.system.build.uki) on the ESP as the firmware's default
  # EFI/BOOT/BOOTX64.EFI. Nothing is installed at build or run time and no
  # NVRAM variables are needed.
  boot.loader.grub.enable = false;
  boot.loader.systemd-boot.enable = false;

  boot.kernelParams = [
    "console=tty0"
    "console=ttyS0,115200n8" # the last console= is /dev/console
  ];
  boot.initrd.kernelModules = [ "overlay" ];

  # --- filesystems ----------------------------------------------------------

  # The image, read-only. noCheck: fsck would open the read-only disk for
  # writing and fail the boot. The label is the one flake.nix gives
  # make-disk-image (it checks that they agree).
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
    options = [ "ro" ];
    noCheck = true;
  };

  # Mounted (and checked with e2fsck) in the initrd, so /var/identity is
  # there before anything of the running system starts.
  fileSystems."/var" = {
    device = "/dev/disk/by-label/var";
    fsType = "ext4";
    neededForBoot = true;
  };

  # /var/home and /var/root are created in the initrd by modules/identity.nix.
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

  boot.tmp.useTmpfs = true;

  # The writable layers of /nix/store and /nix/var: RAM, for this boot only.
  fileSystems."/nix/.rw-store" = {
    device = "tmpfs";
    fsType = "tmpfs";
    options = [ "mode=0755" ];
    neededForBoot = true;
  };

  # /nix/store and /nix/var as overlays over themselves, mounted in the
  # initrd (as nixpkgs' qemu-vm.nix does for its writable store), before the
  # /etc overlay and NixOS' activation use them. Each lowerdir is the
  # directory of the read-only root filesystem the overlay then covers.
  boot.initrd.systemd.services.vmflow-rw-nix = {
    description = "vmflow: writable layers for /nix/store and /nix/var";
    unitConfig = {
      DefaultDependencies = false;
      RequiresMountsFor = [ "/sysroot/nix/.rw-store" ];
    };
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
      ExecStart = "/bin/mkdir -p -m 0755 /sysroot/nix/.rw-store/store /sysroot/nix/.rw-store/store-work /sysroot/nix/.rw-store/var /sysroot/nix/.rw-store/var-work";
    };
  };
  boot.initrd.systemd.mounts = map
    (dir: {
      where = "/sysroot/nix/${dir}";
      what = "overlay";
      type = "overlay";
      options = lib.concatStringsSep "," [
        "lowerdir=/sysroot/nix/${dir}"
        "upperdir=/sysroot/nix/.rw-store/${dir}"
        "workdir=/sysroot/nix/.rw-store/${dir}-work"
      ];
      wantedBy = [ "initrd-fs.target" ];
      before = [ "initrd-fs.target" ];
      requires = [ "vmflow-rw-nix.service" ];
      after = [ "vmflow-rw-nix.service" ];
      unitConfig.RequiresMountsFor = [ "/sysroot/nix/.rw-store" ];
    })
    [ "store" "var" ];

  # resize-var grows the disk while the VM is off; this grows the mounted
  # filesystem to match (online; "Nothing to do!" when it already fills the
  # disk). Done here rather than with fileSystems.autoResize, which would
  # need systemd-growfs in the initrd.
  systemd.services.vmflow-grow-var = {
    description = "vmflow: grow /var to fill its disk";
    wantedBy = [ "multi-user.target" ];
    unitConfig.RequiresMountsFor = [ "/var" ];
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
      ExecStart = "${pkgs.e2fsprogs}/bin/resize2fs /dev/disk/by-label/var";
    };
  };

  # --- users ----------------------------------------------------------------

  # Accounts come from this file alone: userborn (modules/read-only-root.nix)
  # writes them to /var/lib/nixos at every boot. uids are fixed so files on
  # /var keep their owners across image upgrades; system accounts without a
  # fixed uid keep theirs because userborn reuses what /var/lib/nixos holds.
  users.mutableUsers = false;
  # Logins are SSH keys from /var/identity; a password, where the VM has one
  # (vmflow set-password), is the VM's own: userborn reads its hash from
  # /var/identity/passwords at every boot, "!" (no password) unless set. It
  # serves the console (vmflow console); sshd stays key-only. NixOS cannot
  # see either at build time, so its "you would be locked out" check has to
  # be switched off.
  users.allowNoPasswordLogin = true;
  users.users.root.hashedPassword = "!";

  users.users.admin = {
    isNormalUser = true;
    uid = 1000;
    description = "vmflow administrator";
    extraGroups = [ "wheel" ];
    hashedPasswordFile = "/var/identity/passwords/admin";
  };

  users.users.user = {
    isNormalUser = true;
    uid = 1001;
    description = "vmflow user (agents and services run as this account)";
    hashedPasswordFile = "/var/identity/passwords/user";
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
    # Generated by NixOS' sshd units when missing, i.e. on first boot.
    hostKeys = [
      { type = "ed25519"; path = "/var/identity/ssh/ssh_host_ed25519_key"; }
      { type = "rsa"; bits = 4096; path = "/var/identity/ssh/ssh_host_rsa_key"; }
    ];
  };

  # --- network and firewall -------------------------------------------------

  # The hostname comes from /var/identity/hostname at boot, so none is set
  # here: an empty name means no /etc/hostname in the image, and the name
  # modules/identity.nix sets in the initrd stays.
  networking.hostName = "";
  # The address: modules/network.nix (static from /var/identity, or DHCP).
  # useDHCP adds NixOS' catch-all DHCP .network file, used only if
  # vmflow-network.service failed to write its own.
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

  # The store is the image plus a RAM layer (the overlays above): `nix shell`
  # and friends work for the current boot. Software that should stay belongs
  # in a profile.
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
