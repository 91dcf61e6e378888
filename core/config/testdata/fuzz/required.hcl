variable "token" {
  type = string
}
variable "region" {
  type = string
  validation {
    condition     = contains(["eu", "us"], var.region)
    error_message = "region must be eu or us"
  }
}
variable "count" {
  type    = number
  default = 1
}
task "needs" {
  param "name" {
    default = "x"
  }
  step "x" {
    action = builtin.exec
    argv   = ["echo", var.token, var.region, param.name]
  }
  output "token" {
    value     = var.token
    sensitive = true
  }
}
