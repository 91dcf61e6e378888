variable "pool" {
  default = "default"
}
plugin "kit" {
  source = "testkit"
}
task "t" {
  param "name" { type = string }
  lock = "${var.pool}/${param.name}"
  step "a" {
    action = kit.record
    file   = "log.txt"
    text   = param.name
  }
  step "hold" {
    action     = kit.record
    file       = "log.txt"
    text       = "held"
    sleep      = param.name == "demo" ? 30 : 0
    depends_on = [step.a]
  }
}
