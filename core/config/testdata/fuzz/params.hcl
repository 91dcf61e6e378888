task "create" {
  description = "Create a VM"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "memory" {
    type    = number
    default = 1024
  }
  param "start" {
    type    = bool
    default = true
  }
  param "profiles" {
    type    = list(string)
    default = []
  }
  lock = "vm-${param.name}"
  step "define" {
    action  = builtin.exec
    argv    = concat(["define", param.name, tostring(param.memory)], param.profiles)
  }
  step "start" {
    action = builtin.exec
    if     = param.start
    argv   = ["start", param.name]
    depends_on = [step.define]
  }
}
task "install" {
  param "host" {}
  param "packages" {
    type = set(string)
  }
  step "apt" {
    action = builtin.exec
    argv   = concat(["ssh", param.host, "apt-get", "install", "-y"], tolist(param.packages))
  }
}
