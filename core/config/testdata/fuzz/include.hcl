variable "dir" {
  default = "team"
}
variable "flavour" {
  type    = string
  default = "pinned"
}
include "team" {
  path = "${var.dir}/tasks.hcl"
  vars = {
    flavour = var.flavour
    size    = 3
  }
}
include "deep" {
  path = "deep/tasks.hcl"
}
include "again" {
  path = "./tasks.hcl"
}
task "local" {
  step "x" {
    action = builtin.exec
    argv   = ["true"]
  }
}
