variable "name" {
  type        = string
  default     = "demo"
  description = "The VM's name"
}
variable "memory" {
  type    = number
  default = 2048
  validation {
    condition     = var.memory >= 512 && var.memory <= 65536
    error_message = "memory must be between 512 and 65536, got ${var.memory}."
  }
}
variable "enabled" {
  type    = bool
  default = true
}
variable "profiles" {
  type    = list(string)
  default = ["core", "dev"]
}
variable "labels" {
  type    = map(string)
  default = { env = "dev", "team-name" = "infra" }
}
variable "vm" {
  type = object({ cpus = number, disk = string, tags = set(string) })
  default = {
    cpus = 2
    disk = "10G"
    tags = ["a"]
  }
}
variable "token" {
  type      = string
  sensitive = true
  default   = "s3cret"
  validation {
    condition     = strlen(var.token) > 3
    error_message = "token too short"
  }
}
variable "anything" {
  default = [1, "two", { three = 3 }]
}
variable "region" {
  default = env("REGION", "eu-west")
}
task "show" {
  step "x" {
    action = builtin.exec
    argv   = concat(["echo", var.name], var.profiles)
  }
  output "memory" { value = var.memory }
  output "labels" { value = var.labels }
}
