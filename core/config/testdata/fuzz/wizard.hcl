variable "nets" {
  default = ["nat", "bridge"]
}
task "create" {
  description = "Create a VM"
  wizard      = true
  param "name" {
    type   = string
    prompt = "Name of the VM?"
  }
  param "network" {
    default = "nat"
    options = var.nets
  }
  param "vcpus" {
    type    = number
    default = 2
    options = [1, 2, 4]
  }
  param "profiles" {
    type    = list(string)
    default = ["base"]
    options = ["base", "dev", "gui"]
  }
  step "s" {
    action = builtin.exec
    argv   = concat(["echo", param.name, param.network, tostring(param.vcpus)], param.profiles)
  }
}
