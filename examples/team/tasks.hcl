# One person's task file: the team's tasks, and a few of their own.
include "team" {
  path    = "team.hcl"
  flatten = true
}

# create with other defaults, without copying it.
task "dev-vm" {
  description = "A bigger VM for development"
  param "name" { type = string }
  step "vm" {
    task     = "create"
    name     = param.name
    memory   = 4096
    vcpus    = 2
    var_size = "40G"
  }
}

# Steps of one's own before the default snapshot: a local command and an
# action of one's own plugin (examples/hello, built into bin/).
plugin "hello" {
  source = "hello"
}
task "snap" {
  description = "Note and greet, then snapshot"
  param "name" { type = string }
  param "snapshot" { type = string }
  step "note" {
    action = builtin.exec
    argv   = ["sh", "-c", "echo \"snapshot $1 of $2\" >> snapshots.log", "sh", param.snapshot, param.name]
  }
  step "greet" {
    action = hello.greet
    name   = param.name
  }
  step "snapshot" {
    task       = "snapshot"
    name       = param.name
    snapshot   = param.snapshot
    depends_on = [step.note, step.greet]
  }
  output "greeting" { value = step.greet.message }
}
