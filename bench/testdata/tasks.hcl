# Benchmark fixture: 20 VM tasks, mirrored in justfile and Taskfile.yml.
# Every step is builtin.exec, so `vmflow list` and `vmflow validate` need no plugin binary.

variable "backend" {
  type    = string
  default = "libvirt"
}

plugin "hypervisor" { source = var.backend }

task "create" {
  description = "Create a VM"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "memory" {
    type        = number
    default     = 2048
    description = "memory in MiB"
  }
  param "cpus" {
    type        = number
    default     = 2
    description = "virtual CPUs"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "create", "${param.name}", "${param.memory}", "${param.cpus}"]
  }
}

task "upgrade" {
  description = "Upgrade the guest OS packages of a VM"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "reboot" {
    type        = bool
    default     = true
    description = "reboot afterwards"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "upgrade", "${param.name}", "${param.reboot}"]
  }
}

task "snapshot" {
  description = "Take a snapshot of a VM"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "label" {
    type        = string
    description = "snapshot label"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "snapshot", "${param.name}", "${param.label}"]
  }
}

task "restore-snapshot" {
  description = "Restore a VM from a snapshot"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "label" {
    type        = string
    description = "snapshot label"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "restore-snapshot", "${param.name}", "${param.label}"]
  }
}

task "delete-snapshot" {
  description = "Delete a snapshot of a VM"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "label" {
    type        = string
    description = "snapshot label"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "delete-snapshot", "${param.name}", "${param.label}"]
  }
}

task "clone" {
  description = "Clone a VM into a new one"
  param "source" {
    type        = string
    description = "VM to copy"
  }
  param "target" {
    type        = string
    description = "name of the copy"
  }
  step "run" {
    action = builtin.exec
    argv   = ["echo", "clone", "${param.source}", "${param.target}"]
  }
}

task "backup" {
  description = "Back up a VM's disks to a directory"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "dest" {
    type        = string
    default     = "/var/backups/vm"
    description = "backup directory"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "backup", "${param.name}", "${param.dest}"]
  }
}

task "destroy" {
  description = "Destroy a VM and its disks"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "keep_disks" {
    type        = bool
    default     = false
    description = "keep the disk images"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "destroy", "${param.name}", "${param.keep_disks}"]
  }
}

task "start" {
  description = "Start a VM"
  param "name" {
    type        = string
    description = "VM name"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "start", "${param.name}"]
  }
}

task "stop" {
  description = "Stop a VM"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "force" {
    type        = bool
    default     = false
    description = "power off instead of shutdown"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "stop", "${param.name}", "${param.force}"]
  }
}

task "restart" {
  description = "Restart a VM"
  param "name" {
    type        = string
    description = "VM name"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "restart", "${param.name}"]
  }
}

task "status" {
  description = "Show the state of a VM"
  param "name" {
    type        = string
    description = "VM name"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "status", "${param.name}"]
  }
}

task "list-vms" {
  description = "List all VMs on the host"
  param "all" {
    type        = bool
    default     = false
    description = "include stopped VMs"
  }
  step "run" {
    action = builtin.exec
    argv   = ["echo", "list-vms", "${param.all}"]
  }
}

task "ssh" {
  description = "Open an SSH session to a VM"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "user" {
    type        = string
    default     = "root"
    description = "login user"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "ssh", "${param.name}", "${param.user}"]
  }
}

task "console" {
  description = "Attach to the serial console of a VM"
  param "name" {
    type        = string
    description = "VM name"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "console", "${param.name}"]
  }
}

task "resize-var" {
  description = "Grow the /var filesystem of a VM"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "size" {
    type        = string
    default     = "20G"
    description = "new size"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "resize-var", "${param.name}", "${param.size}"]
  }
}

task "resize-disk" {
  description = "Grow the root disk of a VM"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "size" {
    type        = string
    default     = "40G"
    description = "new size"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "resize-disk", "${param.name}", "${param.size}"]
  }
}

task "migrate" {
  description = "Live-migrate a VM to another host"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "host" {
    type        = string
    description = "destination host"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "migrate", "${param.name}", "${param.host}"]
  }
}

task "attach-disk" {
  description = "Attach an extra disk to a VM"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "size" {
    type        = string
    default     = "10G"
    description = "disk size"
  }
  param "bus" {
    type        = string
    default     = "virtio"
    description = "disk bus"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "attach-disk", "${param.name}", "${param.size}", "${param.bus}"]
  }
}

task "set-memory" {
  description = "Change the memory of a VM"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "memory" {
    type        = number
    description = "memory in MiB"
  }
  lock = param.name
  step "run" {
    action = builtin.exec
    argv   = ["echo", "set-memory", "${param.name}", "${param.memory}"]
  }
}
