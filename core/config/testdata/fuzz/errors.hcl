# Several mistakes at once: the loader reports them all.
variable "v" {
  default = 1
}
variable "v" {
  default = 2
}
plugin "builtin" {
  source = "x"
}
task "t" {
  param "opt" {
    default = 1
  }
  param "req" {}
  step "a" {
    action = nope.run
    x      = var.nope
  }
  step "a" {
    x = param.missing
  }
  step "b" {
    action     = builtin.exec
    depends_on = [step.b, step.zzz, var.v]
    y          = step.b.out
  }
  output "o" {
    value = step.a
  }
}
task "t" {}
resource "x" {}
