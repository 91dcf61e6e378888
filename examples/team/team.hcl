# The team's shared task file, kept in git. It includes the default VM
# lifecycle that ships with vmflow (create, snapshot, upgrade, …) under
# its tasks' own names, and adds what the team shares.
include "vm" {
  path    = "vmflow:lifecycle"
  flatten = true
}

# A brand-new task made of two default ones: a snapshot, then a clean
# stop.
task "checkpoint" {
  description = "Snapshot a VM, then shut it down"
  param "name" { type = string }
  param "snapshot" { type = string }
  step "snap" {
    task     = "snapshot"
    name     = param.name
    snapshot = param.snapshot
  }
  step "stop" {
    task       = "stop"
    name       = param.name
    depends_on = [step.snap]
  }
}
