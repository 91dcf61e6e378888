# The smallest useful task file: one task, one built-in step.
task "hello" {
  description = "Say hello"
  step "say" {
    action = builtin.exec
    argv   = ["echo", "hello"]
  }
  output "text" {
    value = step.say.stdout
  }
}
