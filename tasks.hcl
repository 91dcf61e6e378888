# vmflow's default workflows: immutable VMs whose boot disk is a thin,
# read-only overlay on an image, and whose state lives on a separate /var
# disk that no workflow writes over.
#
#   vmflow list                               every task, with its params
#   vmflow create demo                        build the image with nix, create, start
#   vmflow create demo --kernel=… --initrd=…   (or --image=…: prebuilt)
#   vmflow ssh demo                           (or user@demo, admin@demo)
#   vmflow snapshot demo before               snapshot /var
#   vmflow restore-snapshot demo before
#   vmflow upgrade demo                       new image, same /var
#   vmflow destroy demo                       (the machine record stays: recreate)
#
# --var backend=proxmox-stub (or VMFLOW_VAR_backend, or a line in .env)
# runs the same tasks on the Proxmox stand-in.
#
# Each VM has a machine record (profiles, sizes, network, identity, image)
# in vmflow's state directory under machines/<backend>/<name>/ (a VM on
# a host named in var.hosts, --var host=NAME: hosts/<NAME>/machines/…);
# the tasks read it, so upgrade, clone and recreate need only the VM's
# name. Every task that changes a VM takes its lock, so two runs on one VM
# never interleave.
#
# Volumes of a VM NAME: NAME-boot (thin overlay, read-only in the guest),
# NAME-var (/var), NAME-base.<generation> (the imported image, when the
# image is a file rather than a nix store path), NAME-kernel and
# NAME-initrd (direct kernel boot).

variable "backend" {
  type        = string
  default     = "libvirt"
  description = "The hypervisor plugin (proxmox-stub: a stand-in for a Proxmox VE cluster that runs nothing)."
  # vmflow init and vmflow lock lock the plugin of each.
  options = ["libvirt", "proxmox-stub"]
}

variable "uri" {
  type        = string
  default     = "qemu:///system"
  description = "The libvirt URI of the default host (qemu+ssh://user@host/system drives another host)."
}

variable "hosts" {
  type        = map(string)
  default     = {}
  description = "Named hosts, NAME = where its VMs live: a libvirt URI (qemu+ssh://user@host/system); on the proxmox-stub each name is a cluster of its own. --var host=NAME picks one."
  validation {
    condition     = length([for n in keys(var.hosts) : n if n == "default" || !can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*$", n))]) == 0
    error_message = "each name in hosts starts with a letter or digit and holds only letters, digits, '.', '_' and '-'; default is taken (the host var.uri names)."
  }
}

variable "host" {
  type        = string
  default     = "default"
  description = "Where VMs live: default (var.uri; records in machines/<backend>), or a name of var.hosts (records in hosts/<NAME>/machines/<backend>)."
  validation {
    condition     = var.host == "default" || contains(keys(var.hosts), var.host)
    error_message = "host must be default or a name of var.hosts (${length(var.hosts) > 0 ? join(", ", sort(keys(var.hosts))) : "none is named: set VMFLOW_VAR_hosts={NAME = \"URI\", …}"})."
  }
}

variable "virt_type" {
  type        = string
  default     = "auto"
  description = "auto (KVM when hardware virtualisation works, else QEMU's TCG), kvm or qemu."
}

variable "proxmox_node" {
  type        = string
  default     = "pve"
  description = "proxmox-stub: the Proxmox node VMs live on."
}

variable "proxmox_storage" {
  type        = string
  default     = "local-lvm"
  description = "proxmox-stub: where disks are allocated, local-lvm or local."
}

variable "image" {
  type        = string
  default     = ""
  description = "A prebuilt boot image (qcow2 or raw, UEFI) instead of a nix build. create and upgrade take it; the record keeps it for later upgrades."
}

variable "kernel" {
  type        = string
  default     = ""
  description = "Direct kernel boot: the kernel (instead of a nix build). create and upgrade take it."
}

variable "initrd" {
  type        = string
  default     = ""
  description = "Direct kernel boot: the initrd."
}

variable "cmdline" {
  type        = string
  default     = "console=ttyS0"
  description = "Direct kernel boot: the kernel command line."
}

variable "flake" {
  type        = string
  default     = ""
  description = "The flake that composes the profiles; empty: the one beside this file (profiles/). A relative path is taken as image's is."
}

variable "nix_args" {
  type        = list(string)
  default     = []
  description = "More arguments for nix build, e.g. [\"--option\", \"substituters\", \"\"] offline."
}

variable "ssh_key_file" {
  type        = string
  default     = ""
  description = "A public key file for the VM's authorized_keys. Default: the keys ssh-agent holds, else ~/.ssh/*.pub."
}

variable "backup_dir" {
  type        = string
  default     = ""
  description = "Where backups go. Default: backups/<backend> in vmflow's state directory."
}

variable "wait_for_ip" {
  type        = bool
  default     = true
  description = "Whether create, upgrade and the rest wait for the VM's IP address."
}

variable "ip_timeout" {
  type        = number
  default     = 180
  description = "Seconds to wait for a VM's IP address before the task fails."
}

variable "stop_timeout" {
  type        = number
  default     = 120
  description = "Seconds a graceful shutdown may take before the task fails (the VM then keeps running)."
}

# Each backend declares its own config attributes (and vmflow rejects any
# other), so the config is picked by backend.
plugin "hypervisor" {
  source = var.backend
  # A named host is shown in the run header and vmflow runs, and scopes
  # the locks (web@build1); the default host's runs are as before.
  host = var.host == "default" ? null : var.host
  config = {
    libvirt = {
      uri       = var.host == "default" ? var.uri : var.hosts[var.host]
      virt_type = var.virt_type
    }
    proxmox-stub = {
      node    = var.proxmox_node
      storage = var.proxmox_storage
      cluster = var.host == "default" ? "" : var.host
    }
  }[var.backend]
}

plugin "nix" {
  source = "nix"
}

locals {
  # Where this host's records and backups are kept in vmflow's state
  # directory: the default host's where they always were, a named host's
  # under hosts/<NAME>/.
  home = var.host == "default" ? "" : "hosts/${var.host}/"
  # This backend's machine records on this host.
  machines = "${local.home}machines/${var.backend}"
  # ... and on every host, by host: an image's GC root (kept on this
  # machine) goes only when no record on any of them names it.
  every_host_machines = merge({ default = "machines/${var.backend}" }, { for h in keys(var.hosts) : h => "hosts/${h}/machines/${var.backend}" })
  # Where backups go.
  backups = var.backup_dir != "" ? var.backup_dir : "${env("VMFLOW_STATE_DIR")}/${local.home}backups/${var.backend}"
  # The flake: a path the user gave, from where the user gave it (the
  # task file's folder, or where vmflow runs for the lifecycle built into
  # it), else profiles/ beside this file, where the nix plugin looks.
  flake = var.flake != "" ? abspath(var.flake) : "profiles"
  # A VM NAME's volumes are NAME-KIND: its /var, and its boot layer, which
  # upgrade swaps (kernel and initrd for direct kernel boot); an image
  # imported from a file is NAME-base.GENERATION besides.
  volumes    = ["boot", "var", "kernel", "initrd"]
  boot_layer = [for v in local.volumes : v if v != "var"]
}

# ---------------------------------------------------------------------------
# Params several tasks take (params = [param.name, …]), written once.

param "name" {
  type        = string
  description = "VM name"
  complete    = "records:${local.machines}"
}

param "snapshot" {
  type        = string
  description = "snapshot name"
  complete    = "task:snapshots.snapshots"
}

# The settings configure changes (null: not given, unchanged), which the
# internal task settings checks.
param "memory" {
  type        = number
  default     = null
  description = "MiB of RAM"
}
param "vcpus" {
  type        = number
  default     = null
  description = "virtual CPUs"
}
param "tcp_ports" {
  type        = list(string)
  default     = null
  description = "inbound TCP ports or ranges (all of them; SSH is always open)"
}
param "udp_ports" {
  type        = list(string)
  default     = null
  description = "inbound UDP ports or ranges (all of them)"
}
param "resolvers" {
  type        = list(string)
  default     = null
  description = "DNS servers; [] for the network's"
}
param "hosts" {
  type        = list(string)
  default     = null
  description = "its /etc/hosts lines (all of them)"
}
param "ca_certs" {
  type        = list(string)
  default     = null
  description = "CA certificate files (PEM), all of them; [] for none"
}
param "pci_devices" {
  type        = list(string)
  default     = null
  description = "host PCI devices passed through, all of them; [] for none"
}

# ---------------------------------------------------------------------------
# Building and creating

task "build" {
  description = "Build the image for a set of profiles (core is always in), without creating a VM"
  param "profiles" {
    type        = list(string)
    default     = []
    description = "profiles to compose"
  }
  step "build" {
    action     = nix.build
    profiles   = param.profiles
    flake      = local.flake
    extra_args = var.nix_args
  }
  output "image" { value = step.build.image }
  output "profiles" { value = step.build.profiles }
  output "content_id" { value = step.build.content_id }
}

task "create" {
  description = "Create a VM: machine record, image, thin boot overlay, fresh /var with its identity; define, start, wait for its IP"
  # On a terminal, missing params are asked for (defaults shown); --yes,
  # or no terminal, never asks.
  wizard = true
  param "name" {
    type        = string
    description = "VM name"
    prompt      = "Name of the new VM"
  }
  # Where the boot image comes from: the wizard asks, then only what that
  # source needs. On the command line, --image or --kernel (or --var
  # image, --var kernel) says it.
  param "source" {
    type        = string
    default     = var.kernel != "" ? "kernel" : (var.image != "" ? "image" : "nix")
    options     = ["nix", "image", "kernel"]
    description = "where its image comes from: nix (built for its profiles), image (a prebuilt image file) or kernel (a kernel and initrd booted directly); --image or --kernel says it"
    prompt      = "Where does its boot image come from?"
    applies     = param.image == "" && param.kernel == ""
  }
  param "image" {
    type        = string
    default     = var.image
    description = "a prebuilt boot image (qcow2 or raw, UEFI)"
    prompt      = "Image file"
    applies     = param.source == "image" && var.image == ""
  }
  param "kernel" {
    type        = string
    default     = var.kernel
    description = "direct kernel boot: the kernel"
    prompt      = "Kernel file"
    applies     = param.source == "kernel" && var.kernel == ""
  }
  param "initrd" {
    type        = string
    default     = var.initrd
    description = "direct kernel boot: the initrd"
    prompt      = "Initrd file"
    applies     = param.source == "kernel" && var.initrd == ""
  }
  param "profiles" {
    type        = list(string)
    default     = []
    options     = ["core", "docker", "podman", "nvidia", "python", "rust", "dev", "home-manager", "claude", "open-code"]
    description = "profiles to compose (core is always in); for a nix-built image"
    prompt      = "Profiles (core is always in)"
    applies     = param.source == "nix" && param.image == "" && param.kernel == ""
  }
  param "memory" {
    type        = number
    default     = 1024
    description = "MiB of RAM"
  }
  param "vcpus" {
    type        = number
    default     = 1
    description = "virtual CPUs"
  }
  param "var_size" {
    type        = string
    default     = "10G"
    description = "size of the /var disk (512M, 30G, …)"
  }
  param "network" {
    type        = string
    default     = "nat"
    description = "nat or bridge:NAME"
  }
  param "static_ip" {
    type        = string
    default     = ""
    description = "a fixed address with its prefix (192.168.122.50/24); empty: DHCP"
  }
  param "gateway" {
    type        = string
    default     = ""
    description = "the gateway for static_ip; empty: the network's first address"
    applies     = param.static_ip != ""
  }
  param "tcp_ports" {
    type        = list(string)
    default     = ["22", "80", "443"]
    description = "inbound TCP ports (or ranges, 8000-8010) its firewall opens; SSH is always open"
  }
  param "udp_ports" {
    type        = list(string)
    default     = []
    description = "inbound UDP ports (or ranges) its firewall opens"
    ask         = false
  }
  param "resolvers" {
    type        = list(string)
    default     = []
    description = "DNS servers (1.1.1.1,1.0.0.1); empty: the network's"
    ask         = false
  }
  param "hosts" {
    type        = list(string)
    default     = []
    description = "lines for its /etc/hosts (\"10.0.0.5 git.lab\")"
    ask         = false
  }
  param "ca_certs" {
    type        = list(string)
    default     = []
    description = "CA certificate files (PEM) it trusts besides the public CAs"
    ask         = false
  }
  param "passwords" {
    type        = bool
    default     = false
    description = "ask for admin's and user's console login passwords (twice each on a terminal, else a line each from stdin)"
  }
  param "pci_devices" {
    type        = list(string)
    default     = []
    description = "host PCI devices passed through, as lspci -D names them (a GPU and its audio: 0000:01:00.0,0000:01:00.1)"
    applies     = contains(param.profiles, "nvidia")
  }
  lock = param.name

  precondition {
    condition     = param.static_ip == "" || can(regex("^[0-9]{1,3}(\\.[0-9]{1,3}){3}/[0-9]{1,2}$", param.static_ip))
    error_message = "static_ip must be an IPv4 address with its prefix, like 192.168.122.50/24."
  }
  precondition {
    condition     = param.kernel == "" || param.initrd != ""
    error_message = "Direct kernel boot needs both --kernel PATH and --initrd PATH."
  }
  precondition {
    condition     = param.source != "image" || param.image != ""
    error_message = "The image comes from a file: give it with --image PATH."
  }
  precondition {
    condition     = param.source != "kernel" || param.kernel != ""
    error_message = "Direct kernel boot: give the kernel and initrd with --kernel PATH --initrd PATH."
  }
  precondition {
    condition     = !contains(param.profiles, "nvidia") || length(param.pci_devices) > 0
    error_message = "The nvidia profile drives a GPU passed through to the VM: name it with --pci_devices (lspci -D | grep -i nvidia lists the GPU and its audio function, which go together, e.g. --pci_devices 0000:01:00.0,0000:01:00.1)."
  }

  step "vacant" {
    task = "vacant"
    name = param.name
    hint = "its VM was destroyed. vmflow recreate ${param.name} brings it back; vmflow purge ${param.name} forgets it."
  }
  step "settings" {
    task        = "settings"
    name        = param.name
    memory      = param.memory
    vcpus       = param.vcpus
    pci_devices = param.pci_devices
    tcp_ports   = param.tcp_ports
    udp_ports   = param.udp_ports
    resolvers   = param.resolvers
    hosts       = param.hosts
    ca_certs    = param.ca_certs
  }
  step "ask" {
    action = builtin.password
    if     = param.passwords
    users  = ["admin", "user"]
  }
  step "keys" {
    action = builtin.authorized_keys
    files  = var.ssh_key_file != "" ? [var.ssh_key_file] : []
  }
  step "image" {
    task       = "image"
    name       = param.name
    generation = 1
    profiles   = param.profiles
    image      = param.image
    kernel     = param.kernel
    initrd     = param.initrd
    cmdline    = var.cmdline
    depends_on = [step.vacant]
  }
  step "record" {
    action     = builtin.record_write
    collection = local.machines
    name       = param.name
    mode       = "create"
    values = merge(step.image.record, step.settings.record, {
      name        = param.name
      backend     = var.backend
      hostname    = param.name
      memory      = param.memory
      vcpus       = param.vcpus
      var_size    = param.var_size
      network     = param.network
      static_ip   = param.static_ip
      gateway     = param.gateway
      pci_devices = param.pci_devices
      created     = timestamp()
    }, param.passwords ? { passwords_set = timestamp() } : {})
    generate = {
      uuid       = "uuid"
      machine_id = "machine_id"
      mac        = "mac"
    }
    # Kept 0600 beside the record, for recreate.
    secrets = { for u, h in coalesce(step.ask.hashes, {}) : "password_${u}" => h }
  }
  step "vm" {
    task      = "provision"
    name      = param.name
    record    = step.record.values
    image     = step.image.backing
    kernel    = step.image.kernel
    initrd    = step.image.initrd
    keys      = step.keys.keys
    files     = step.settings.files
    passwords = coalesce(step.ask.hashes, {})
  }
  output "ip" { value = step.vm.ip }
  output "ssh" { value = "vmflow ssh ${param.name}   (user@${param.name}, admin@${param.name})" }
  output "console_log" {
    # null (not shown) where the backend keeps no console log.
    value = step.vm.console_log != "" ? step.vm.console_log : null
  }
}

task "recreate" {
  description = "Create a destroyed VM again from its machine record: same identity, sizes and image source, a fresh /var of the stored size"
  params      = [param.name]
  lock        = param.name

  step "record" {
    action     = builtin.record_read
    collection = local.machines
    name       = param.name
  }
  step "absent" {
    action  = hypervisor.ensure_absent
    vm      = param.name
    volumes = [for v in concat(local.volumes, ["base.${step.record.values.generation}"]) : "${param.name}-${v}"]
  }
  step "keys" {
    action = builtin.authorized_keys
    files  = var.ssh_key_file != "" ? [var.ssh_key_file] : []
  }
  step "image" {
    task       = "image"
    name       = param.name
    generation = step.record.values.generation
    profiles   = step.record.values.profiles
    image      = step.record.values.source == "nix" ? "" : step.record.values.image
    kernel     = step.record.values.kernel
    initrd     = step.record.values.initrd
    depends_on = [step.absent]
  }
  # The settings the record keeps, onto the new /var (none in a record
  # from before they existed).
  step "settings" {
    task        = "settings"
    name        = param.name
    memory      = step.record.values.memory
    vcpus       = step.record.values.vcpus
    pci_devices = try(step.record.values.pci_devices, null)
    tcp_ports   = try(step.record.values.tcp_ports, null)
    udp_ports   = try(step.record.values.udp_ports, null)
    resolvers   = try(step.record.values.resolvers, null)
    hosts       = try(step.record.values.hosts, null)
    ca_pem      = try(step.record.values.ca_certificates, null)
  }
  step "vm" {
    task      = "provision"
    name      = param.name
    record    = step.record.values
    image     = step.image.backing
    kernel    = step.image.kernel
    initrd    = step.image.initrd
    keys      = step.keys.keys
    files     = step.settings.files
    passwords = { for u in ["admin", "user"] : u => step.record.secrets["password_${u}"] if contains(keys(step.record.secrets), "password_${u}") }
  }
  output "ip" { value = step.vm.ip }
  output "var_size" { value = step.record.values.var_size }
}

# ---------------------------------------------------------------------------
# Upgrading

task "upgrade" {
  description = "Rebuild the image for the stored profiles and swap it in as the boot disk (new overlay under a temporary name, graceful stop, atomic swap, redefine, start); /var is never touched"
  params      = [param.name]
  lock        = param.name

  step "record" {
    action     = builtin.record_read
    collection = local.machines
    name       = param.name
  }
  step "state" {
    action = hypervisor.state
    name   = param.name
  }
  step "defined" {
    action    = builtin.assert
    condition = step.state.exists
    message   = "${param.name} is not defined (destroyed?): vmflow recreate ${param.name} brings it back."
  }
  # Snapshots hold /var and the definition, whose disk paths the swap keeps:
  # those taken shut off stay valid. One taken running also holds the old
  # system's memory, which cannot run on the new image: the user deletes
  # those first, knowingly.
  step "snapshots" {
    action = hypervisor.snapshot_list
    name   = param.name
  }
  step "no_memory_snapshots" {
    action    = builtin.assert
    condition = length([for s in step.snapshots.snapshots : s.name if s.state == "running"]) == 0
    message   = "${param.name} has snapshots taken while it ran (${join(", ", [for s in step.snapshots.snapshots : s.name if s.state == "running"])}): they hold the old system's memory, which cannot resume on a new image. Delete them first (vmflow delete-snapshot ${param.name} SNAPSHOT); snapshots taken shut off are kept."
  }

  # 1. The new image, for the stored profiles or the image or kernel
  # given now; a new kernel and initrd under temporary names.
  step "image" {
    task       = "image"
    name       = param.name
    generation = step.record.values.generation + 1
    profiles   = step.record.values.profiles
    image      = var.image != "" ? var.image : (step.record.values.source == "nix" ? "" : step.record.values.image)
    kernel     = var.kernel != "" ? var.kernel : step.record.values.kernel
    initrd     = var.kernel != "" ? var.initrd : step.record.values.initrd
    cmdline    = var.kernel != "" ? var.cmdline : step.record.values.cmdline
    suffix     = ".next"
    depends_on = [step.defined, step.no_memory_snapshots]
  }
  # 2. The new boot overlay, under a temporary name.
  step "overlay" {
    action  = hypervisor.volume_overlay
    name    = "${param.name}-boot.next"
    backing = step.image.backing
  }
  # 3. A graceful stop; if a later step fails, its undo starts the VM again.
  step "stop" {
    action     = hypervisor.shutdown
    name       = param.name
    timeout    = var.stop_timeout
    depends_on = [step.overlay, step.image]
  }
  # 4. The swap: each an atomic exchange, undone by exchanging back.
  step "swap" {
    for_each   = toset(local.boot_layer)
    action     = hypervisor.volume_swap
    if         = each.key == "boot" || step.image.kernel != null
    name       = "${param.name}-${each.key}"
    with       = "${param.name}-${each.key}.next"
    depends_on = [step.stop]
  }
  # Defined again on the swapped volumes (a kernel and initrd where they
  # are now).
  step "vm" {
    task       = "machine"
    name       = param.name
    record     = step.record.values
    cmdline    = var.kernel != "" ? var.cmdline : null
    depends_on = [step.swap]
  }
  # The commit point: once the record names the new image, the upgrade
  # only goes forward (vmflow resume finishes it); undoing would point the
  # record back at the boot layer the next steps delete.
  step "save" {
    action     = builtin.record_write
    commit     = true
    collection = local.machines
    name       = param.name
    mode       = "update"
    values     = merge(step.image.record, { upgraded = timestamp() })
    depends_on = [step.vm]
  }
  # The old boot layer, now under the temporary names, goes: the overlay
  # before the base it was made on.
  step "old" {
    action     = hypervisor.volumes_delete
    names      = concat([for v in local.boot_layer : "${param.name}-${v}.next"], compact([step.record.values.base_volume]))
    missing_ok = true
    depends_on = [step.save]
  }
  # The old image's GC root goes once no other VM of this backend uses it.
  step "release" {
    task       = "release"
    gc_root    = try(step.record.values.gc_root, "")
    in_use     = step.image.record.gc_root
    except     = param.name
    depends_on = [step.save]
  }
  output "ip" { value = step.vm.ip }
  output "generation" { value = step.record.values.generation + 1 }
  output "snapshots_kept" { value = step.snapshots.names }
}

# ---------------------------------------------------------------------------
# Power and information

task "start" {
  description = "Start a VM and wait for its IP"
  params      = [param.name]
  lock        = param.name
  step "start" {
    action = hypervisor.start
    name   = param.name
  }
  step "ip" {
    action     = hypervisor.wait_ip
    if         = var.wait_for_ip
    timeout    = var.ip_timeout
    name       = param.name
    depends_on = [step.start]
  }
  output "ip" { value = var.wait_for_ip ? step.ip.ip : "(not waited for)" }
}

task "stop" {
  description = "Shut a VM down (ACPI or guest agent), failing after the timeout"
  params      = [param.name]
  param "timeout" {
    type        = number
    default     = 120
    description = "seconds to wait"
  }
  lock = param.name
  step "shutdown" {
    action  = hypervisor.shutdown
    name    = param.name
    timeout = param.timeout
  }
}

task "force-stop" {
  description = "Force a VM off at once"
  params      = [param.name]
  lock        = param.name
  step "destroy" {
    action = hypervisor.destroy
    name   = param.name
  }
}

task "reboot" {
  description = "Reboot a VM (ACPI or guest agent)"
  params      = [param.name]
  lock        = param.name
  step "reboot" {
    action = hypervisor.reboot
    name   = param.name
  }
}

task "status" {
  description = "Show a VM's state, IP, image, profiles and backend"
  read_only   = true
  params      = [param.name]
  step "record" {
    action     = builtin.record_read
    collection = local.machines
    name       = param.name
    missing_ok = true
  }
  step "state" {
    action = hypervisor.state
    name   = param.name
  }
  # What the guest says it runs: the image writes /etc/vmflow/image.json
  # (profiles/flake.nix) and NixOS links /run/current-system to the system
  # it booted. A VM that is off or booting, or has no guest agent, says
  # nothing, which is no failure of status.
  step "guest" {
    action       = hypervisor.guest_exec
    if           = step.state.state == "running"
    name         = param.name
    argv         = ["sh", "-c", "cat /etc/vmflow/image.json && echo && { readlink /run/current-system || true; }"]
    timeout      = 15
    ignore_error = true
  }
  output "state" { value = step.state.exists ? step.state.state : "not defined" }
  output "ip" { value = step.state.ip }
  output "image" { value = try(step.record.values.image != "" ? step.record.values.image : "kernel ${step.record.values.kernel}", "(no machine record)") }
  output "profiles" { value = try(step.record.values.profiles, []) }
  output "backend" { value = var.backend }
  output "host" { value = var.host }
  output "memory" { value = try(step.record.values.memory, null) }
  output "vcpus" { value = try(step.record.values.vcpus, null) }
  output "var_size" { value = try(step.record.values.var_size, null) }
  output "network" { value = try(step.record.values.network, null) }
  output "uuid" { value = step.state.uuid }
  output "mac" { value = try(step.record.values.mac, null) }
  output "machine_id" { value = try(step.record.values.machine_id, null) }
  output "generation" { value = try(step.record.values.generation, null) }
  output "tcp_ports" { value = try(step.record.values.tcp_ports, null) }
  output "udp_ports" { value = try(step.record.values.udp_ports, null) }
  output "resolvers" { value = try(step.record.values.resolvers, null) }
  output "hosts" { value = try(step.record.values.hosts, null) }
  output "ca_certificates" { value = try(length(regexall("-----BEGIN CERTIFICATE-----", step.record.values.ca_certificates)), null) }
  output "passwords" { value = try("set ${step.record.values.passwords_set}", null) }
  output "pci_devices" { value = try(step.record.values.pci_devices, null) }
  output "guest_image" {
    value = try(merge(jsondecode(split("\n", step.guest.stdout)[0]), { system = trimspace(split("\n", step.guest.stdout)[1]) }), "(not reported: the VM is not running, or its guest agent did not answer)")
  }
  output "image_check" {
    value = try(
      sort(jsondecode(split("\n", step.guest.stdout)[0]).profiles) == sort(step.record.values.profiles) && (try(step.record.values.system, "") == "" || trimspace(split("\n", step.guest.stdout)[1]) == step.record.values.system)
      ? "the guest runs the image its record names"
      : "differs: the guest runs [${join(", ", jsondecode(split("\n", step.guest.stdout)[0]).profiles)}]${trimspace(split("\n", step.guest.stdout)[1]) != "" ? " ${trimspace(split("\n", step.guest.stdout)[1])}" : ""}, its record names [${join(", ", step.record.values.profiles)}]${try(step.record.values.system, "") != "" ? " ${step.record.values.system}" : ""}: vmflow upgrade ${param.name} boots the record's image",
      null
    )
  }
}

task "vms" {
  description = "List VMs: their states, and the machine records of this backend on this host (--all: on every host)"
  read_only   = true
  param "all" {
    type        = bool
    default     = false
    description = "every host, the default one and those of var.hosts, each asked on its own: one that does not answer is named with the reason"
  }
  locals {
    # The hosts listed besides this one, as the backend reaches them.
    others = param.all ? { for h, u in merge({ default = var.uri }, var.hosts) : h => var.backend == "libvirt" ? u : (h == "default" ? "" : h) if h != var.host } : {}
  }
  step "list" {
    action = hypervisor.list
    hosts  = local.others
  }
  step "records" {
    for_each   = param.all ? local.every_host_machines : { (var.host) = local.machines }
    action     = builtin.record_list
    collection = each.value
    values     = false
  }
  output "host" { value = var.host }
  output "vms" { value = step.list.states }
  output "records" { value = step.records[var.host].names }
  # With --all: every host's VMs and records; vms is null for a host that
  # did not answer, and unreachable says why.
  output "hosts" {
    value = param.all ? { for h, c in local.every_host_machines : h => {
      records = step.records[h].names
      vms     = h == var.host ? step.list.states : contains(keys(step.list.by_host), h) ? step.list.by_host[h] : null
    } } : null
  }
  output "unreachable" { value = param.all && length(step.list.unreachable) > 0 ? step.list.unreachable : null }
}

task "ssh" {
  description = "SSH into a VM as user (or user@NAME, admin@NAME)"
  read_only   = true
  param "target" {
    type        = string
    description = "[user@]NAME"
  }
  step "record" {
    action     = builtin.record_read
    collection = local.machines
    name       = element(split("@", param.target), length(split("@", param.target)) - 1)
  }
  step "state" {
    action = hypervisor.state
    name   = step.record.values.name
  }
  step "running" {
    action    = builtin.assert
    condition = step.state.state == "running" && step.state.ip != ""
    message   = "${step.record.values.name} is ${step.state.exists ? step.state.state : "not defined"}${step.state.state == "running" ? " but has no IP address yet" : ""}: vmflow start ${step.record.values.name}, then wait for its address (vmflow status ${step.record.values.name})."
  }
  step "ssh" {
    action = builtin.terminal
    argv = [
      "ssh",
      # Each VM keeps its host keys on /var: remember them per VM, so a new
      # VM that gets an old one's address is not taken for an attack.
      "-o", "UserKnownHostsFile=${step.record.path}/known_hosts",
      "-o", "StrictHostKeyChecking=accept-new",
      # An address that does not answer fails in seconds, and a session
      # whose VM went away ends within a minute, instead of hanging.
      "-o", "ConnectTimeout=10",
      "-o", "ServerAliveInterval=15",
      "-o", "ServerAliveCountMax=4",
      "${length(split("@", param.target)) > 1 ? split("@", param.target)[0] : "user"}@${step.state.ip}",
    ]
    # The remote shell's own exit status is the user's business.
    allow_failure = true
    depends_on    = [step.running]
  }
  # ssh itself failing (it exits 255: no connection, refused key) is not.
  step "connected" {
    action    = builtin.assert
    condition = step.ssh.exit_code != 255
    message   = "ssh could not reach ${step.state.ip} for ${step.record.values.name}, or lost the connection (ssh exited 255; its message is above)."
  }
}

task "console" {
  description = "Attach to a VM's serial console (Ctrl-] detaches)"
  read_only   = true
  params      = [param.name]
  step "console" {
    action = hypervisor.console
    name   = param.name
  }
}

task "exec" {
  description = "Run a command inside a VM through the guest agent"
  params      = [param.name]
  param "command" {
    type        = list(string)
    description = "the command and its arguments"
  }
  step "exec" {
    action = hypervisor.guest_exec
    name   = param.name
    argv   = param.command
  }
  output "stdout" { value = step.exec.stdout }
}

# ---------------------------------------------------------------------------
# Snapshots

task "snapshot" {
  description = "Snapshot a VM's /var disk (with its memory when it runs)"
  params      = [param.name]
  param "snapshot" {
    type        = string
    description = "snapshot name"
  }
  lock = param.name
  step "snapshot" {
    action   = hypervisor.snapshot_create
    name     = param.name
    snapshot = param.snapshot
  }
}

task "restore-snapshot" {
  description = "Bring a VM's /var back to a snapshot (an unknown one changes nothing)"
  params      = [param.name, param.snapshot]
  lock        = param.name
  step "revert" {
    action   = hypervisor.snapshot_revert
    name     = param.name
    snapshot = param.snapshot
  }
  output "state" { value = step.revert.state }
}

task "snapshots" {
  description = "List a VM's snapshots"
  read_only   = true
  params      = [param.name]
  step "list" {
    action = hypervisor.snapshot_list
    name   = param.name
  }
  output "snapshots" { value = step.list.names }
}

task "delete-snapshot" {
  description = "Delete one of a VM's snapshots"
  params      = [param.name, param.snapshot]
  lock        = param.name
  step "delete" {
    action   = hypervisor.snapshot_delete
    name     = param.name
    snapshot = param.snapshot
  }
}

# ---------------------------------------------------------------------------
# Removing and changing

task "destroy" {
  description = "Remove a VM and all its disks, /var included; the machine record stays (recreate, purge)"
  params      = [param.name]
  lock        = param.name
  # Nothing of the VM is left for an interrupted run on it to finish or
  # undo: such runs are marked superseded.
  supersedes = true
  step "vm" {
    task = "teardown"
    name = param.name
  }
  output "deleted" { value = step.vm.deleted }
}

task "purge" {
  description = "Destroy a VM and forget it: its disks and its machine record go (backups stay)"
  params      = [param.name]
  lock        = param.name
  # Nothing of the VM is left for an interrupted run on it to finish or
  # undo: such runs are marked superseded.
  supersedes = true
  step "record" {
    action     = builtin.record_read
    collection = local.machines
    name       = param.name
    missing_ok = true
  }
  step "vm" {
    task = "teardown"
    name = param.name
  }
  step "forget" {
    action     = builtin.record_delete
    collection = local.machines
    name       = param.name
    missing_ok = true
    depends_on = [step.vm]
  }
  # The image's GC root goes once no other VM of this backend uses it.
  step "release" {
    task       = "release"
    gc_root    = try(step.record.values.gc_root, "")
    depends_on = [step.forget]
  }
}

task "resize-var" {
  description = "Grow a VM's /var disk (shut off; never shrinks). The guest grows its filesystem at next boot."
  params      = [param.name]
  param "size" {
    type        = string
    description = "the new size (20G, …)"
  }
  lock = param.name
  step "off" {
    task       = "shut-off"
    name       = param.name
    missing_ok = true
    why        = "stop it first"
  }
  # A disk does not shrink back: once the resize started, the task only
  # goes forward (vmflow resume writes the record), never back.
  step "resize" {
    action     = hypervisor.volume_resize
    commit     = true
    name       = "${param.name}-var"
    size       = param.size
    depends_on = [step.off]
  }
  step "save" {
    action     = builtin.record_write
    collection = local.machines
    name       = param.name
    mode       = "update"
    values     = { var_size = param.size }
    depends_on = [step.resize]
  }
  output "capacity" { value = step.resize.capacity }
}

task "network-config" {
  description = "Move a shut-off VM to another network: nat, or bridge:NAME"
  params      = [param.name]
  param "network" {
    type        = string
    description = "nat or bridge:NAME"
  }
  lock = param.name
  step "record" {
    action     = builtin.record_read
    collection = local.machines
    name       = param.name
  }
  step "off" {
    task = "shut-off"
    name = param.name
    why  = "it must be defined and shut off"
  }
  step "vm" {
    task       = "machine"
    name       = param.name
    record     = step.record.values
    network    = param.network
    start      = false
    depends_on = [step.off]
  }
  step "save" {
    action     = builtin.record_write
    collection = local.machines
    name       = param.name
    mode       = "update"
    values     = { network = param.network }
    depends_on = [step.vm]
  }
}

task "set-profiles" {
  description = "Change the profiles a VM's image is built from; vmflow upgrade NAME builds and boots them"
  params      = [param.name]
  param "profiles" {
    type        = list(string)
    description = "the profiles (core is always in)"
  }
  lock = param.name
  step "record" {
    action     = builtin.record_read
    collection = local.machines
    name       = param.name
  }
  step "known" {
    action = nix.list_profiles
    flake  = local.flake
  }
  step "valid" {
    action    = builtin.assert
    condition = length(setsubtract(param.profiles, step.known.profiles)) == 0
    message   = "unknown profile ${join(", ", setsubtract(param.profiles, step.known.profiles))}; the flake offers: ${join(", ", step.known.profiles)}."
  }
  step "save" {
    action     = builtin.record_write
    collection = local.machines
    name       = param.name
    mode       = "update"
    values = {
      profiles = param.profiles
      source   = "nix"
    }
    depends_on = [step.valid, step.record]
  }
  output "next" { value = "vmflow upgrade ${param.name} builds the image for ${join(", ", param.profiles)} and boots it; /var stays." }
}

task "configure" {
  description = "Change a shut-off VM's memory, CPUs, PCI devices, inbound ports, DNS servers, /etc/hosts lines or CA certificates; they take effect at its next start (only what is given changes)"
  params      = [param.name, param.memory, param.vcpus, param.tcp_ports, param.udp_ports, param.resolvers, param.hosts, param.ca_certs, param.pci_devices]
  lock        = param.name
  locals {
    # Memory, CPUs and devices are in the definition, the rest on /var.
    defined = merge(
      param.memory != null ? { memory = param.memory } : {},
      param.vcpus != null ? { vcpus = param.vcpus } : {},
      param.pci_devices != null ? { pci_devices = param.pci_devices } : {},
    )
    redefine = length(keys(local.defined)) > 0
  }
  precondition {
    condition     = local.redefine || param.tcp_ports != null || param.udp_ports != null || param.resolvers != null || param.hosts != null || param.ca_certs != null
    error_message = "Nothing to change: give --memory, --vcpus, --pci_devices, --tcp_ports, --udp_ports, --resolvers, --hosts or --ca_certs."
  }
  step "record" {
    action     = builtin.record_read
    collection = local.machines
    name       = param.name
  }
  step "off" {
    task      = "shut-off"
    name      = param.name
    why       = "its settings change while it is off"
    edits_var = param.tcp_ports != null || param.udp_ports != null || param.resolvers != null || param.hosts != null || param.ca_certs != null
  }
  step "settings" {
    task        = "settings"
    name        = param.name
    memory      = param.memory
    vcpus       = param.vcpus
    pci_devices = param.pci_devices
    tcp_ports   = param.tcp_ports
    udp_ports   = param.udp_ports
    resolvers   = param.resolvers
    hosts       = param.hosts
    ca_certs    = param.ca_certs
  }
  step "identity" {
    action     = hypervisor.volume_edit
    if         = length(keys(step.settings.files)) > 0
    name       = "${param.name}-var"
    files      = step.settings.files
    depends_on = [step.off]
  }
  step "vm" {
    task       = "machine"
    if         = local.redefine
    name       = param.name
    record     = merge(step.record.values, local.defined)
    start      = false
    depends_on = [step.off]
  }
  step "save" {
    action     = builtin.record_write
    collection = local.machines
    name       = param.name
    mode       = "update"
    values     = merge(step.settings.record, local.defined)
    depends_on = [step.identity, step.vm]
  }
}

task "set-password" {
  description = "Set admin's and user's console login passwords (asked twice each on a terminal, else a line each from stdin; empty: none) on a shut-off VM; SSH stays key-only"
  params      = [param.name]
  lock        = param.name
  step "record" {
    action     = builtin.record_read
    collection = local.machines
    name       = param.name
  }
  step "off" {
    task      = "shut-off"
    name      = param.name
    why       = "its passwords are written onto its /var disk"
    edits_var = true
  }
  step "ask" {
    action     = builtin.password
    users      = ["admin", "user"]
    depends_on = [step.off, step.record]
  }
  step "identity" {
    action       = hypervisor.volume_edit
    name         = "${param.name}-var"
    secret_files = { for u, h in step.ask.hashes : "identity/passwords/${u}" => "${h}\n" }
  }
  # Kept 0600 beside the record, for recreate; never copied by clone.
  step "save" {
    action     = builtin.record_write
    collection = local.machines
    name       = param.name
    mode       = "update"
    values     = { passwords_set = timestamp() }
    secrets    = { for u, h in step.ask.hashes : "password_${u}" => h }
    depends_on = [step.identity]
  }
}

# ---------------------------------------------------------------------------
# Copies and backups

task "clone" {
  description = "Copy a shut-off VM: same /var data and image, a fresh identity (machine-id, MAC, UUID, hostname; the source's SSH host keys dropped)"
  param "source" {
    type        = string
    description = "the VM to copy (shut off)"
    complete    = "records:${local.machines}"
  }
  param "dest" {
    type        = string
    description = "the new VM's name"
  }
  param "memory" {
    type        = number
    default     = null
    description = "MiB of RAM (default: the source's)"
  }
  param "vcpus" {
    type        = number
    default     = null
    description = "virtual CPUs (default: the source's)"
  }
  param "network" {
    type        = string
    default     = null
    description = "nat or bridge:NAME (default: the source's)"
  }
  lock = [param.source, param.dest]

  step "src" {
    action     = builtin.record_read
    collection = local.machines
    name       = param.source
  }
  step "off" {
    task = "shut-off"
    name = param.source
    why  = "a clone copies the /var of a shut-off VM"
  }
  step "vacant" {
    task = "vacant"
    name = param.dest
    hint = "pick another name, or vmflow purge ${param.dest}."
  }
  step "record" {
    action     = builtin.record_write
    collection = local.machines
    name       = param.dest
    mode       = "create"
    values = merge(step.src.values, {
      name        = param.dest
      hostname    = param.dest
      memory      = coalesce(param.memory, step.src.values.memory)
      vcpus       = coalesce(param.vcpus, step.src.values.vcpus)
      network     = coalesce(param.network, step.src.values.network)
      static_ip   = "" # two VMs cannot share one fixed address
      gateway     = ""
      generation  = 1
      base_volume = step.src.values.base_volume != "" ? "${param.dest}-base.1" : ""
      cloned_from = param.source
      created     = timestamp()
      uuid        = null
      machine_id  = null
      mac         = null
      # Its passwords are not copied (its secrets neither), nor its PCI
      # devices, which serve one VM at a time.
      passwords_set = null
      pci_devices   = []
    })
    generate = {
      uuid       = "uuid"
      machine_id = "machine_id"
      mac        = "mac"
    }
    depends_on = [step.off, step.vacant]
  }
  # The copies: /var, the imported image (not a nix store path, which is
  # shared), the kernel and initrd; each source by its copy's name.
  step "copy" {
    for_each = {
      var      = "${param.source}-var"
      "base.1" = step.src.values.base_volume
      kernel   = step.src.values.kernel != "" ? "${param.source}-kernel" : ""
      initrd   = step.src.values.kernel != "" ? "${param.source}-initrd" : ""
    }
    action     = hypervisor.volume_copy
    if         = each.value != ""
    source     = each.value
    name       = "${param.dest}-${each.key}"
    depends_on = [step.record]
  }
  step "boot" {
    action  = hypervisor.volume_overlay
    name    = "${param.dest}-boot"
    backing = step.src.values.base_volume != "" ? step.copy["base.1"].name : step.src.values.image
  }
  step "identity" {
    action = hypervisor.volume_edit
    name   = step.copy["var"].name
    files = {
      "identity/hostname"   = "${param.dest}\n"
      "identity/machine-id" = "${step.record.values.machine_id}\n"
    }
    # Host keys and passwords are the source's own, never a copy's.
    remove = ["identity/ssh/*", "identity/static-ip", "identity/gateway", "identity/passwords/*"]
  }
  step "vm" {
    task       = "machine"
    name       = param.dest
    record     = step.record.values
    kernel     = step.copy["kernel"].path
    initrd     = step.copy["initrd"].path
    depends_on = [step.boot, step.identity]
  }
  output "ip" { value = step.vm.ip }
  output "mac" { value = step.vm.mac }
  output "uuid" { value = step.vm.uuid }
}

task "backup" {
  description = "Archive a VM's disks and machine record (zstd, with a checksum); a running VM is paused meanwhile and resumed in every case"
  params      = [param.name]
  lock        = param.name
  step "record" {
    action     = builtin.record_read
    collection = local.machines
    name       = param.name
  }
  step "pause" {
    action = hypervisor.suspend
    name   = param.name
  }
  step "tmp" {
    action = builtin.temp_dir
    prefix = "backup-${param.name}"
  }
  # The VM's volumes, by their names in the archive.
  step "export" {
    for_each = {
      "var.qcow2" = "${param.name}-var"
      "base.img"  = step.record.values.base_volume
      kernel      = step.record.values.kernel != "" ? "${param.name}-kernel" : ""
      initrd      = step.record.values.kernel != "" ? "${param.name}-initrd" : ""
    }
    action     = hypervisor.volume_export
    if         = each.value != ""
    name       = each.value
    path       = "${step.tmp.path}/${each.key}"
    depends_on = [step.pause]
  }
  step "resume" {
    action     = hypervisor.resume
    name       = param.name
    depends_on = [step.export]
  }
  step "archive" {
    action = builtin.archive_create
    path   = "${local.backups}/${param.name}-${formatdate("YYYYMMDD-hhmmss", timestamp())}.tar.zst"
    files = merge(
      { "record.json" = "${step.record.path}/record.json" },
      # The password hashes (set-password), for a recreate after a restore.
      length(keys(step.record.secrets)) > 0 ? { "secrets.json" = "${step.record.path}/secrets.json" } : {},
      { for file, e in step.export : file => e.path if e.path != null },
    )
    metadata = {
      name    = param.name
      backend = var.backend
      host    = var.host
    }
    # The exports go with the temporary directory below; record.json is
    # the live record, never removed.
    depends_on = [step.resume]
  }
  step "cleanup" {
    action     = builtin.remove
    paths      = [step.tmp.path]
    depends_on = [step.archive]
  }
  output "archive" { value = step.archive.path }
  output "sha256" { value = step.archive.sha256 }
  output "size" { value = step.archive.size }
}

task "backups" {
  description = "List backups, newest first (of one VM, or all)"
  read_only   = true
  param "name" {
    type        = string
    default     = ""
    description = "only this VM's"
  }
  step "list" {
    action = builtin.archive_list
    dir    = local.backups
  }
  output "backups" { value = [for a in step.list.archives : "${a.created}  ${a.metadata.name}  ${a.path}  (${a.size} bytes)" if param.name == "" || a.metadata.name == param.name] }
}

task "restore-backup" {
  description = "Bring a VM back from a backup (default: its newest): the archive is verified before anything is removed"
  params      = [param.name]
  param "file" {
    type        = string
    default     = ""
    description = "the archive (default: the VM's newest backup)"
  }
  lock = param.name
  # The VM is made anew from the archive: interrupted runs on it are moot.
  supersedes = true
  step "list" {
    action = builtin.archive_list
    dir    = local.backups
  }
  step "found" {
    action    = builtin.assert
    condition = param.file != "" || length([for a in step.list.archives : a.path if a.metadata.name == param.name]) > 0
    message   = "no backup of ${param.name} in ${var.backend}'s backups on host ${var.host}: vmflow backups lists them; give one with --file=PATH."
  }
  step "verify" {
    action     = builtin.archive_verify
    path       = param.file != "" ? abspath(param.file) : [for a in step.list.archives : a.path if a.metadata.name == param.name][0]
    depends_on = [step.found]
  }
  # A backup is restored where it was made: its disks would have to move
  # to another host's pool (one made before hosts existed is the default
  # host's).
  step "match" {
    action    = builtin.assert
    condition = step.verify.metadata.name == param.name && step.verify.metadata.backend == var.backend && lookup(step.verify.metadata, "host", "default") == var.host
    message   = "${step.verify.path} is a backup of ${step.verify.metadata.name} on ${step.verify.metadata.backend} host ${lookup(step.verify.metadata, "host", "default")}, not of ${param.name} on ${var.backend} host ${var.host}: a backup is restored on the host it was made on (--var host=${lookup(step.verify.metadata, "host", "default")}); nothing was changed."
  }
  step "extract" {
    action     = builtin.archive_extract
    path       = step.verify.path
    depends_on = [step.match]
  }
  # Only now, with the archive verified and unpacked, does the old VM go.
  # That is the commit point: once the old VM is gone, undoing could not
  # bring it back, so from here the restore only goes forward (vmflow
  # resume finishes it).
  step "old" {
    task       = "teardown"
    name       = param.name
    final      = true
    depends_on = [step.extract]
  }
  step "record" {
    action     = builtin.record_write
    collection = local.machines
    name       = param.name
    mode       = "replace"
    from_file  = step.extract.files["record.json"]
    values     = { restored = timestamp(), restored_from = step.verify.path }
    secrets    = contains(keys(step.extract.files), "secrets.json") ? jsondecode(file(step.extract.files["secrets.json"])) : {}
    depends_on = [step.old]
  }
  step "var" {
    action     = hypervisor.volume_import
    path       = step.extract.files["var.qcow2"]
    name       = "${param.name}-var"
    depends_on = [step.old]
  }
  # The image as the backup holds it: an imported one (or a kernel-boot
  # VM's placeholder) and the kernel and initrd, or the nix store path.
  step "image" {
    task       = "image"
    name       = param.name
    generation = step.record.values.generation
    profiles   = step.record.values.profiles
    image      = lookup(step.extract.files, "base.img", "")
    kernel     = lookup(step.extract.files, "kernel", "")
    initrd     = lookup(step.extract.files, "initrd", "")
    built      = step.record.values.source == "nix" ? step.record.values.image : ""
  }
  step "boot" {
    action  = hypervisor.volume_overlay
    name    = "${param.name}-boot"
    backing = step.image.backing
  }
  step "vm" {
    task       = "machine"
    name       = param.name
    record     = step.record.values
    kernel     = step.image.kernel
    initrd     = step.image.initrd
    depends_on = [step.boot, step.var]
  }
  step "cleanup" {
    action     = builtin.remove
    paths      = [step.extract.dir]
    depends_on = [step.vm]
  }
  output "restored_from" { value = step.verify.path }
  output "ip" { value = step.vm.ip }
}

# ---------------------------------------------------------------------------
# The parts the tasks above are made of. Internal: steps call them
# (task = "image"); vmflow list leaves them out. A team's own tasks can
# call them too (docs/lifecycle.md).

task "vacant" {
  internal    = true
  description = "Refuse a new VM's name before anything is made: a VM of that name, any of its disks, or its machine record left by destroy"
  params      = [param.name]
  param "hint" {
    type        = string
    description = "what to do about a record left behind"
  }
  lock = param.name
  step "absent" {
    action  = hypervisor.ensure_absent
    vm      = param.name
    volumes = [for v in concat(local.volumes, ["base.1"]) : "${param.name}-${v}"]
  }
  step "known" {
    action     = builtin.record_read
    collection = local.machines
    name       = param.name
    missing_ok = true
  }
  step "new" {
    action    = builtin.assert
    condition = !step.known.exists
    message   = "${param.name} has a machine record already (${step.known.path}): ${param.hint}"
    # A VM or disks that exist are the first thing to say: then the record
    # is not the cause.
    depends_on = [step.absent]
  }
}

task "shut-off" {
  internal    = true
  description = "Refuse unless a VM is defined and shut off"
  params      = [param.name]
  param "why" {
    type        = string
    description = "why it must be off"
  }
  param "missing_ok" {
    type        = bool
    default     = false
    description = "a VM that is not defined is fine too"
  }
  param "edits_var" {
    type        = bool
    default     = false
    description = "its /var is about to be rewritten (volume_edit), which its snapshots would not survive: refuse a VM that has any"
  }
  step "state" {
    action = hypervisor.state
    name   = param.name
  }
  step "off" {
    action    = builtin.assert
    condition = step.state.state == "shut off" || (param.missing_ok && !step.state.exists)
    message   = "${param.name} is ${step.state.exists ? step.state.state : "not defined"}: ${param.why} (vmflow stop ${param.name})."
  }
  step "snapshots" {
    action     = hypervisor.snapshot_list
    if         = param.edits_var
    name       = param.name
    depends_on = [step.off]
  }
  step "unsnapshotted" {
    action    = builtin.assert
    if        = param.edits_var
    condition = length(step.snapshots.names) == 0
    message   = "${param.name} has snapshots (${join(", ", step.snapshots.names)}): changing what is on its /var rewrites the disk, which they would not survive. Delete them first (vmflow delete-snapshot ${param.name} SNAPSHOT)."
  }
}

task "settings" {
  internal    = true
  description = "Check a VM's settings (null: not given) against the rules and the host, and turn them into its machine record's values and its /var/identity files (profiles/core.nix reads them at boot)"
  params      = [param.name, param.memory, param.vcpus, param.tcp_ports, param.udp_ports, param.resolvers, param.hosts, param.ca_certs, param.pci_devices]
  param "ca_pem" {
    type        = string
    default     = null
    description = "CA certificates as the record keeps them (instead of ca_certs)"
  }
  locals {
    ports = concat(coalesce(param.tcp_ports, []), coalesce(param.udp_ports, []))
    pem   = param.ca_certs != null ? join("", [for f in param.ca_certs : file(abspath(f))]) : param.ca_pem
    given = {
      tcp_ports       = param.tcp_ports
      udp_ports       = param.udp_ports
      resolvers       = param.resolvers
      hosts           = param.hosts
      ca_certificates = local.pem
    }
    ip = "(([0-9]{1,3}\\.){3}[0-9]{1,3}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)"
    bad = {
      ports     = [for p in local.ports : p if try(!can(regex("^[0-9]{1,5}(-[0-9]{1,5})?$", p)) || tonumber(split("-", p)[0]) < 1 || tonumber(reverse(split("-", p))[0]) > 65535 || tonumber(split("-", p)[0]) > tonumber(reverse(split("-", p))[0]), true)]
      resolvers = [for r in coalesce(param.resolvers, []) : r if !can(regex("^${local.ip}$", r))]
      hosts     = [for h in coalesce(param.hosts, []) : h if !can(regex("^${local.ip}[ \t]+[^ \t]", h))]
      ca_certs  = [for f in coalesce(param.ca_certs, []) : f if !can(regex("-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\\s]+-----END CERTIFICATE-----", file(abspath(f))))]
    }
    lists = {
      "tcp-ports" = param.tcp_ports
      "udp-ports" = param.udp_ports
      resolvers   = param.resolvers
      hosts       = param.hosts
    }
  }
  precondition {
    condition     = length(local.bad.ports) == 0
    error_message = "ports must be numbers from 1 to 65535, or ranges of them (8000-8010): ${join(", ", local.bad.ports)} is not."
  }
  precondition {
    condition     = length(local.bad.resolvers) == 0
    error_message = "resolvers must be IPv4 or IPv6 addresses: ${join(", ", local.bad.resolvers)} is not."
  }
  precondition {
    condition     = length(local.bad.hosts) == 0
    error_message = "a hosts line is an address, then names (\"10.0.0.5 git.lab git\"): \"${join("\", \"", local.bad.hosts)}\" is not."
  }
  precondition {
    condition     = length(local.bad.ca_certs) == 0
    error_message = "ca_certs must be PEM files of certificates (-----BEGIN CERTIFICATE-----): ${join(", ", local.bad.ca_certs)} is not."
  }
  # What the host cannot give is refused before anything is made.
  step "host" {
    action      = hypervisor.host_check
    name        = param.name
    memory      = param.memory
    vcpus       = param.vcpus
    pci_devices = coalesce(param.pci_devices, [])
  }
  output "record" { value = { for k, v in local.given : k => v if v != null } }
  output "files" {
    value = merge(
      { for f, v in local.lists : "identity/${f}" => join("", [for l in v : "${l}\n"]) if v != null },
      local.pem == null ? {} : { "identity/ca-certificates.pem" = local.pem },
    )
  }
}

task "image" {
  internal    = true
  description = "A VM's boot image: built by nix for its profiles, or imported from an image file; for direct kernel boot, its kernel and initrd (and a placeholder boot disk when there is no image)"
  params      = [param.name]
  param "generation" {
    type        = number
    description = "the image's generation: an imported image is the volume NAME-base.GENERATION"
  }
  param "profiles" {
    type        = list(string)
    description = "profiles to build (with no image and no kernel)"
  }
  param "image" {
    type        = string
    default     = ""
    description = "an image file to import instead of a nix build"
  }
  param "kernel" {
    type        = string
    default     = ""
    description = "direct kernel boot: the kernel file"
  }
  param "initrd" {
    type        = string
    default     = ""
    description = "direct kernel boot: the initrd file"
  }
  param "cmdline" {
    type        = string
    default     = ""
    description = "direct kernel boot: the kernel command line"
  }
  param "suffix" {
    type        = string
    default     = ""
    description = "after the kernel's and initrd's volume names (.next while upgrading)"
  }
  param "built" {
    type        = string
    default     = ""
    description = "an image nix built already (a store path): used as it is"
  }
  locals {
    nix  = param.image == "" && param.kernel == "" && param.built == ""
    base = "${param.name}-base.${param.generation}"
  }
  step "build" {
    action     = nix.build
    if         = local.nix
    profiles   = param.profiles
    flake      = local.flake
    extra_args = var.nix_args
  }
  step "import" {
    action = hypervisor.volume_import
    if     = param.image != ""
    path   = abspath(param.image)
    name   = local.base
  }
  step "placeholder" {
    # A direct-kernel-boot guest without an image still gets a boot disk
    # (vda), so that its /var disk is always vdb.
    action = hypervisor.volume_create
    if     = param.image == "" && param.kernel != ""
    name   = local.base
    size   = "64M"
  }
  step "files" {
    for_each = { kernel = param.kernel, initrd = param.initrd }
    action   = hypervisor.volume_import
    if       = param.kernel != ""
    path     = abspath(each.value)
    name     = "${param.name}-${each.key}${param.suffix}"
  }
  # What the boot overlay is made on.
  output "backing" { value = param.built != "" ? param.built : (local.nix ? step.build.image : (param.image != "" ? step.import.name : step.placeholder.name)) }
  # Direct kernel boot: the paths define takes; null without.
  output "kernel" { value = step.files["kernel"].path }
  output "initrd" { value = step.files["initrd"].path }
  # The machine record's values that say where the image came from.
  output "record" {
    value = {
      source      = local.nix ? "nix" : "prebuilt"
      profiles    = local.nix ? step.build.profiles : param.profiles
      image       = param.image != "" ? abspath(param.image) : (local.nix ? step.build.image : "")
      content_id  = local.nix ? step.build.content_id : ""
      system      = local.nix ? step.build.system : ""
      gc_root     = local.nix ? step.build.gc_root : ""
      kernel      = param.kernel != "" ? abspath(param.kernel) : ""
      initrd      = param.kernel != "" ? abspath(param.initrd) : ""
      cmdline     = param.kernel != "" ? param.cmdline : ""
      generation  = param.generation
      base_volume = local.nix ? "" : local.base
    }
  }
}

task "provision" {
  internal    = true
  description = "A new VM from its machine record and its image: a thin boot overlay, a fresh /var that holds its identity; defined, started"
  params      = [param.name]
  param "record" {
    type        = any
    description = "its machine record's values"
  }
  param "image" {
    type        = string
    description = "the image its boot overlay is made on"
  }
  param "keys" {
    type        = string
    description = "its authorized_keys"
  }
  param "kernel" {
    type        = string
    default     = null
    description = "direct kernel boot: the kernel's path"
  }
  param "initrd" {
    type        = string
    default     = null
    description = "direct kernel boot: the initrd's path"
  }
  param "files" {
    type        = map(string)
    default     = {}
    description = "more files for its /var: its settings (the settings task's files)"
  }
  param "passwords" {
    type        = map(string)
    default     = {}
    description = "user → password hash, for /var/identity/passwords"
  }
  lock = param.name
  step "boot" {
    action  = hypervisor.volume_overlay
    name    = "${param.name}-boot"
    backing = param.image
  }
  step "var" {
    action     = hypervisor.volume_create
    name       = "${param.name}-var"
    size       = param.record.var_size
    filesystem = "ext4"
    label      = "var"
    # The identity the image reads at boot (profiles/core.nix).
    files = merge({
      "identity/hostname"        = "${param.record.hostname}\n"
      "identity/machine-id"      = "${param.record.machine_id}\n"
      "identity/authorized_keys" = param.keys
      }, param.record.static_ip == "" ? {} : {
      "identity/static-ip" = "${param.record.static_ip}\n"
      "identity/gateway"   = "${param.record.gateway}\n"
    }, param.files)
    secret_files = { for u, h in param.passwords : "identity/passwords/${u}" => "${h}\n" }
  }
  step "machine" {
    task       = "machine"
    name       = param.name
    record     = param.record
    kernel     = param.kernel
    initrd     = param.initrd
    depends_on = [step.boot, step.var]
  }
  output "ip" { value = step.machine.ip }
  output "console_log" { value = step.machine.console_log }
}

task "machine" {
  internal    = true
  description = "Define a VM from its machine record, on its volumes NAME-boot and NAME-var; start it and wait for its IP"
  params      = [param.name]
  param "record" {
    type        = any
    description = "its machine record's values"
  }
  param "kernel" {
    type        = string
    default     = null
    description = "direct kernel boot: the kernel's path (default: NAME-kernel's, when its record boots a kernel)"
  }
  param "initrd" {
    type        = string
    default     = null
    description = "direct kernel boot: the initrd's path (default: NAME-initrd's)"
  }
  param "cmdline" {
    type        = string
    default     = null
    description = "direct kernel boot: the command line (default: the record's)"
  }
  param "network" {
    type        = string
    default     = null
    description = "nat or bridge:NAME (default: the record's)"
  }
  param "start" {
    type        = bool
    default     = true
    description = "start it (and wait for its IP)"
  }
  lock = param.name
  locals {
    kernel_boot = param.kernel != null || try(param.record.kernel, "") != ""
  }
  # A VM that boots a kernel: where its kernel and initrd are now, unless
  # given.
  step "path" {
    for_each = toset(["kernel", "initrd"])
    action   = hypervisor.volume_info
    if       = local.kernel_boot && param.kernel == null
    name     = "${param.name}-${each.key}"
  }
  step "define" {
    action      = hypervisor.define
    name        = param.name
    uuid        = param.record.uuid
    mac         = param.record.mac
    memory      = param.record.memory
    vcpus       = param.record.vcpus
    boot_volume = "${param.name}-boot"
    var_volume  = "${param.name}-var"
    firmware    = local.kernel_boot ? "kernel" : "uefi"
    kernel      = param.kernel != null ? param.kernel : step.path["kernel"].path
    initrd      = param.initrd != null ? param.initrd : step.path["initrd"].path
    cmdline     = !local.kernel_boot ? null : (param.cmdline != null ? param.cmdline : param.record.cmdline)
    network     = param.network != null ? param.network : param.record.network
    pci_devices = try(param.record.pci_devices, [])
  }
  step "start" {
    task       = "start"
    if         = param.start
    name       = param.name
    depends_on = [step.define]
  }
  output "ip" { value = step.start.ip }
  output "mac" { value = step.define.mac }
  output "uuid" { value = step.define.uuid }
  output "console_log" { value = step.define.console_log }
}

task "teardown" {
  internal    = true
  description = "Remove a VM and every volume it has, found by their names with or without a record: what an interrupted create, upgrade or clone left goes too"
  params      = [param.name]
  param "final" {
    type        = bool
    default     = false
    description = "the removal is the run's commit point: from there on the run only goes forward"
  }
  lock = param.name
  step "undefine" {
    action     = hypervisor.undefine
    commit     = param.final
    name       = param.name
    force      = true
    missing_ok = true
  }
  step "disks" {
    action     = hypervisor.volume_list
    prefix     = "${param.name}-"
    pattern    = "${param.name}-(${join("|", local.volumes)}|base\\.[0-9]+)(\\.next)?"
    depends_on = [step.undefine]
  }
  step "volumes" {
    action     = hypervisor.volumes_delete
    names      = step.disks.names
    missing_ok = true
  }
  output "deleted" { value = step.volumes.deleted }
}

task "release" {
  internal    = true
  description = "Let nix collect an image once no VM of this backend uses it, on any host: its GC root goes"
  param "gc_root" {
    type        = string
    description = "the image's GC root; empty: nothing to release"
  }
  param "in_use" {
    type        = string
    default     = ""
    description = "a GC root that stays (the new image's)"
  }
  param "except" {
    type        = string
    default     = ""
    description = "a VM whose record does not count (it names the new image)"
  }
  step "others" {
    for_each   = local.every_host_machines
    action     = builtin.record_list
    collection = each.value
  }
  step "release" {
    action  = nix.release
    if      = param.gc_root != "" && param.gc_root != param.in_use && length(flatten([for h, o in step.others : [for n, r in o.records : n if !(h == var.host && n == param.except) && try(r.gc_root, "") == param.gc_root]])) == 0
    gc_root = param.gc_root
  }
}
