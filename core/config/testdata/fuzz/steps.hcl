plugin "kit" {
  source = "testkit"
}
task "pipeline" {
  param "size" {
    type    = number
    default = 1
  }
  step "first" {
    action = kit.record
    file   = "ran.txt"
    text   = "first"
  }
  step "second" {
    action = kit.echo
    value  = step.first.text
    size   = param.size > 0 ? param.size : -1
  }
  step "third" {
    action     = builtin.exec
    if         = step.second.value != "" && param.size < 10
    argv       = ["echo", step.second.value, step.first.text]
    depends_on = [step.first, step.second]
  }
  step "last" {
    action     = builtin.exec
    argv       = [for s in [step.third.stdout, step.first.text] : upper(s)]
    depends_on = [step.third]
  }
  output "value" {
    value       = step.second.value
    description = "The echoed value"
  }
  output "all" {
    value     = "${step.first.text}/${step.third.stdout}"
    sensitive = true
  }
}
