# vmflow's default workflows: VMs whose boot disk is a thin, read-only
# overlay and whose state lives on a separate /var disk.
#
#   vmflow list                      what is here
#   vmflow create demo --var kernel=… --var initrd=…   (or --var image=…)
#   vmflow snapshot demo before      snapshot /var
#   vmflow restore-snapshot demo before
#   vmflow destroy demo
#
# --var backend=proxmox-stub (or VMFLOW_VAR_backend, or a line in .env)
# runs the same tasks on the Proxmox stand-in.
#
# Until the nix plugin builds images, a VM boots a prebuilt image
# (--var image=PATH, UEFI) or a kernel and initrd (direct kernel boot).
# Every task takes the VM's lock, so two runs on one VM never interleave.

variable "backend" {
  type        = string
  default     = "libvirt"
  description = "The hypervisor plugin: libvirt, or proxmox-stub (a stand-in for a Proxmox VE cluster that runs nothing)."
  validation {
    condition     = contains(["libvirt", "proxmox-stub"], var.backend)
    error_message = "backend must be libvirt or proxmox-stub."
  }
}

variable "uri" {
  type        = string
  default     = "qemu:///system"
  description = "The libvirt URI (qemu+ssh://user@host/system drives another host)."
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
  description = "A prebuilt boot image (qcow2 or raw, UEFI) to base VMs on."
}

variable "kernel" {
  type        = string
  default     = ""
  description = "Direct kernel boot: the kernel."
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

variable "wait_for_ip" {
  type        = bool
  default     = true
  description = "Whether create waits for the VM's IP address."
}

# Each backend declares its own config attributes (and vmflow rejects any
# other), so the config is picked by backend.
plugin "hypervisor" {
  source = var.backend
  config = {
    libvirt = {
      uri       = var.uri
      virt_type = var.virt_type
    }
    proxmox-stub = {
      node    = var.proxmox_node
      storage = var.proxmox_storage
    }
  }[var.backend]
}

task "create" {
  description = "Create a VM: thin boot overlay, fresh /var disk, define, start"
  param "name" {
    type        = string
    description = "VM name"
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
  lock = param.name

  precondition {
    condition     = var.image != "" || var.kernel != ""
    error_message = "Give the VM something to boot: --var image=PATH (a UEFI disk image), or --var kernel=PATH --var initrd=PATH (direct kernel boot)."
  }

  step "image" {
    action = hypervisor.volume_import
    if     = var.image != ""
    path   = abspath(var.image)
    name   = "${param.name}-base"
  }
  step "placeholder" {
    # A direct-kernel-boot guest still gets a boot disk (vda), so that
    # its /var disk is always vdb.
    action = hypervisor.volume_create
    if     = var.image == ""
    name   = "${param.name}-base"
    size   = "64M"
  }
  step "kernel" {
    action = hypervisor.volume_import
    if     = var.kernel != ""
    path   = abspath(var.kernel)
    name   = "${param.name}-kernel"
  }
  step "initrd" {
    action = hypervisor.volume_import
    if     = var.initrd != ""
    path   = abspath(var.initrd)
    name   = "${param.name}-initrd"
  }
  step "boot" {
    action  = hypervisor.volume_overlay
    name    = "${param.name}-boot"
    backing = coalesce(step.image.name, step.placeholder.name)
  }
  step "var" {
    action     = hypervisor.volume_create
    name       = "${param.name}-var"
    size       = param.var_size
    filesystem = "ext4"
    label      = "var"
  }
  step "define" {
    action      = hypervisor.define
    name        = param.name
    memory      = param.memory
    vcpus       = param.vcpus
    boot_volume = step.boot.name
    var_volume  = step.var.name
    firmware    = var.kernel != "" ? "kernel" : "uefi"
    kernel      = step.kernel.path
    initrd      = step.initrd.path
    cmdline     = var.kernel != "" ? var.cmdline : null
    network     = param.network
  }
  step "start" {
    action = hypervisor.start
    name   = step.define.name
  }
  step "ip" {
    action = hypervisor.wait_ip
    if     = var.wait_for_ip
    name   = step.define.name
    depends_on = [step.start]
  }
  output "ip" {
    value = coalesce(step.ip.ip, "(not waited for)")
  }
  output "console_log" {
    value = step.define.console_log
  }
}

task "start" {
  description = "Start a VM"
  param "name" { type = string }
  lock = param.name
  step "start" {
    action = hypervisor.start
    name   = param.name
  }
}

task "stop" {
  description = "Shut a VM down (ACPI or guest agent), failing after the timeout"
  param "name" { type = string }
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
  param "name" { type = string }
  lock = param.name
  step "destroy" {
    action = hypervisor.destroy
    name   = param.name
  }
}

task "status" {
  description = "Show a VM's state"
  param "name" { type = string }
  step "state" {
    action = hypervisor.state
    name   = param.name
  }
  output "state" {
    value = step.state.exists ? step.state.state : "not defined"
  }
}

task "list" {
  description = "List VMs and their states"
  step "list" {
    action = hypervisor.list
  }
  output "vms" {
    value = step.list.states
  }
}

task "exec" {
  description = "Run a command inside a VM through the guest agent"
  param "name" { type = string }
  param "command" {
    type        = list(string)
    description = "the command and its arguments"
  }
  step "exec" {
    action = hypervisor.guest_exec
    name   = param.name
    argv   = param.command
  }
  output "stdout" {
    value = step.exec.stdout
  }
}

task "console" {
  description = "Attach to a VM's serial console (Ctrl-] detaches)"
  param "name" { type = string }
  step "console" {
    action = hypervisor.console
    name   = param.name
  }
}

task "snapshot" {
  description = "Snapshot a VM's /var disk"
  param "name" { type = string }
  param "snapshot" { type = string }
  lock = param.name
  step "snapshot" {
    action   = hypervisor.snapshot_create
    name     = param.name
    snapshot = param.snapshot
  }
}

task "restore-snapshot" {
  description = "Bring a VM's /var back to a snapshot (an unknown one changes nothing)"
  param "name" { type = string }
  param "snapshot" { type = string }
  lock = param.name
  step "revert" {
    action   = hypervisor.snapshot_revert
    name     = param.name
    snapshot = param.snapshot
  }
  output "state" {
    value = step.revert.state
  }
}

task "snapshots" {
  description = "List a VM's snapshots"
  param "name" { type = string }
  step "list" {
    action = hypervisor.snapshot_list
    name   = param.name
  }
  output "snapshots" {
    value = step.list.names
  }
}

task "delete-snapshot" {
  description = "Delete one of a VM's snapshots"
  param "name" { type = string }
  param "snapshot" { type = string }
  lock = param.name
  step "delete" {
    action   = hypervisor.snapshot_delete
    name     = param.name
    snapshot = param.snapshot
  }
}

task "destroy" {
  description = "Remove a VM and all its disks, /var included"
  param "name" { type = string }
  lock = param.name
  step "undefine" {
    action     = hypervisor.undefine
    name       = param.name
    force      = true
    missing_ok = true
  }
  step "boot" {
    action     = hypervisor.volume_delete
    name       = "${param.name}-boot"
    missing_ok = true
    depends_on = [step.undefine]
  }
  step "base" {
    action     = hypervisor.volume_delete
    name       = "${param.name}-base"
    missing_ok = true
    depends_on = [step.boot]
  }
  step "var" {
    action     = hypervisor.volume_delete
    name       = "${param.name}-var"
    missing_ok = true
    depends_on = [step.undefine]
  }
  step "kernel" {
    action     = hypervisor.volume_delete
    name       = "${param.name}-kernel"
    missing_ok = true
    depends_on = [step.undefine]
  }
  step "initrd" {
    action     = hypervisor.volume_delete
    name       = "${param.name}-initrd"
    missing_ok = true
    depends_on = [step.undefine]
  }
}
