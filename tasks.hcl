# vmflow's default workflows.
#
# The VM lifecycle (create, upgrade, snapshot, restore-snapshot, clone,
# backup, destroy, …) arrives with the libvirt, nix and proxmox-stub
# plugins. Until then this file shows the language on the example plugin:
# `vmflow list`, `vmflow greet NAME`, `vmflow plan greet NAME`.

variable "greeting_style" {
  type        = string
  default     = "plain"
  description = "plain or loud"
  validation {
    condition     = contains(["plain", "loud"], var.greeting_style)
    error_message = "greeting_style must be plain or loud."
  }
}

plugin "hello" {
  source = "hello"
}

task "greet" {
  description = "Greet someone through the example plugin, then a local command"
  param "name" {
    type        = string
    description = "who to greet"
  }
  param "times" {
    type        = number
    default     = 1
    description = "how many times"
  }
  lock = param.name

  step "greet" {
    action = hello.greet
    name   = param.name
    times  = param.times
  }
  step "style" {
    action = builtin.exec
    argv   = var.greeting_style == "loud" ? ["tr", "a-z", "A-Z"] : ["cat"]
    stdin  = step.greet.message
  }
  output "message" {
    value = trimspace(step.style.stdout)
  }
}
