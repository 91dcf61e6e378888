# The wizard's test tasks (wizard_test.go): each step echoes the params it
# received into $WIZARD_OUT, so a test asserts what the task got.

task "create" {
  description = "Create a VM"
  wizard      = true
  param "name" {
    type   = string
    prompt = "Name of the new VM?"
  }
  param "profiles" {
    type        = list(string)
    default     = ["base"]
    options     = ["base", "dev", "gui"]
    description = "Profiles to apply"
  }
  param "memory" {
    type        = number
    default     = 2048
    description = "Memory in MiB?"
  }
  param "vcpus" {
    type    = number
    default = 2
    options = [1, 2, 4]
    prompt  = "How many vCPUs?"
  }
  param "var_size" {
    type        = string
    default     = "10G"
    description = "Size of /var?"
  }
  param "network" {
    type    = string
    default = "nat"
    options = ["nat", "bridge"]
    prompt  = "Which network?"
  }
  param "ip" {
    type        = string
    default     = ""
    description = "Static IP (empty: DHCP)?"
  }
  # Set by its flag alone: the wizard never asks it.
  param "dns" {
    type        = list(string)
    default     = []
    description = "DNS servers?"
    ask         = false
  }
  step "echo" {
    action = builtin.exec
    shell  = true
    argv = [
      "printf 'name=%s\\nprofiles=%s\\nmemory=%s\\nvcpus=%s\\nvar_size=%s\\nnetwork=%s\\nip=%s\\n' \"$@\" > \"$WIZARD_OUT\"",
      param.name, join(",", param.profiles), tostring(param.memory), tostring(param.vcpus),
      param.var_size, param.network, param.ip,
    ]
  }
}

# Without wizard = true only a missing required param is asked for.
task "plain" {
  description = "Echo a name and a size"
  param "name" {
    type   = string
    prompt = "Plain name?"
  }
  param "size" {
    type    = number
    default = 1
  }
  step "echo" {
    action = builtin.exec
    shell  = true
    argv   = ["printf 'name=%s\\nsize=%s\\n' \"$@\" > \"$WIZARD_OUT\"", param.name, tostring(param.size)]
  }
}

# applies: the wizard asks only for what matters. profiles does not
# apply with --var image; gateway only once ip has a value.
variable "image" { default = "" }
task "net" {
  description = "Echo a network setup"
  wizard      = true
  param "profiles" {
    type        = list(string)
    default     = ["base"]
    options     = ["base", "dev"]
    description = "Net profiles?"
    applies     = var.image == ""
  }
  param "ip" {
    type        = string
    default     = ""
    description = "Net IP (empty: DHCP)?"
  }
  param "gateway" {
    type        = string
    default     = ""
    description = "Net gateway?"
    applies     = param.ip != ""
  }
  step "echo" {
    action = builtin.exec
    shell  = true
    argv   = ["printf 'profiles=%s\\nip=%s\\ngateway=%s\\n' \"$@\" > \"$WIZARD_OUT\"", join(",", param.profiles), param.ip, param.gateway]
  }
}
