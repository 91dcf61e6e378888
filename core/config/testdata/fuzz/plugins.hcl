variable "registry" {
  type    = string
  default = "registry.example"
}
variable "uri" {
  default = "qemu:///system"
}
plugin "hv" {
  source = "${var.registry}/hypervisor"
  config = {
    uri     = var.uri
    retries = 3
    opts    = { debug = false }
  }
}
plugin "kit" {
  source = "testkit"
}
task "define" {
  step "disk" {
    action = hv.create_disk
    size   = "10G"
  }
  step "vm" {
    action = hv.define
    disk   = step.disk.path
  }
  step "log" {
    action = kit.record
    file   = "log.txt"
    text   = step.vm.id
  }
}
