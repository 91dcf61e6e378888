variable "names" {
  type    = list(string)
  default = ["web", "db", "cache"]
}
variable "ports" {
  type    = map(number)
  default = { http = 80, https = 443 }
}
task "fn" {
  description = format("%d names, %s", length(var.names), join(",", sort(var.names)))
  param "prefix" {
    default = "vm"
  }
  step "a" {
    action  = builtin.exec
    argv    = formatlist("%s-%s", param.prefix, var.names)
    env     = { for k, v in var.ports : upper(k) => tostring(v) }
    only    = [for n in var.names : n if n != "db"]
    first   = element(var.names, 0)
    keys    = keys(var.ports)
    merged  = merge(var.ports, { ssh = 22 })
    regex   = regex_replace("a-b-c", "-", "_")
    json    = jsonencode({ a = [1, 2], b = null })
    splat   = [{ n = 1 }, { n = 2 }][*].n
    cond    = length(var.names) > 2 ? "many" : "few"
    home    = env("HOME")
    heredoc = <<-EOT
      name: ${param.prefix}
      %{ for n in var.names }- ${n}
      %{ endfor }
    EOT
  }
}
