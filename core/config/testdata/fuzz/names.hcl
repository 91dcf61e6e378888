variable "my-var" {
  default = "dash"
}
variable "_under" {
  default = "score"
}
task "build-all_2" {
  param "vm-name" {}
  step "step-1" {
    action = builtin.exec
    argv   = [var.my-var, var._under, param.vm-name]
  }
  step "step_2" {
    action     = builtin.exec
    argv       = [step.step-1.stdout]
    depends_on = [step.step-1]
  }
}
include "sub-ns" {
  path = "/abs/path/sub.hcl"
}
