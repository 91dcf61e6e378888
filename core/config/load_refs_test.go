package config

import (
	"testing"
)

// TestLoadErrorsReferences: references and function calls to what is not
// declared, and roots not allowed where they are used.
func TestLoadErrorsReferences(t *testing.T) {
	runLoadErrors(t, []loadErrorCase{
		{
			name:    "reference to an undeclared variable",
			src:     "variable \"memory\" {\n  default = 1\n}\ntask \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    m = var.memroy\n  }\n}\n",
			summary: "Reference to undeclared variable", line: 7, detail: `No variable "memroy" is declared in this file. Did you mean "memory"?`,
		},
		{
			// Descriptions are evaluated, not reference-checked: the error is
			// HCL's own.
			name:    "description refers to an undeclared variable",
			src:     "task \"t\" {\n\n  description = \"${var.v}\"\n}\n",
			summary: "Unsupported attribute", line: 3,
		},
		{
			name:    "unknown function in a precondition",
			src:     "task \"t\" {\n  precondition {\n    condition     = alltrue([true])\n    error_message = \"x\"\n  }\n}\n",
			summary: "Call to unknown function", line: 3, detail: `There is no function named "alltrue".`,
		},
		{
			name:    "misspelt function in an output",
			src:     "task \"t\" {\n  output \"o\" {\n    value = lenght([1])\n  }\n}\n",
			summary: "Call to unknown function", line: 3, detail: `There is no function named "lenght". Did you mean "length"?`,
		},
		{
			name:    "reference to an undeclared param",
			src:     "task \"t\" {\n  param \"name\" {}\n  step \"a\" {\n    action = builtin.exec\n    n = param.nmae\n  }\n}\n",
			summary: "Reference to undeclared param", line: 5, detail: `Task "t" has no param "nmae". Did you mean "name"?`,
		},
		{
			name:    "reference to an undeclared step",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec\n  }\n  output \"o\" {\n    value = step.b.out\n  }\n}\n",
			summary: "Reference to undeclared step", line: 6,
		},
		{
			name:    "whole-step reference in an argument",
			src:     "task \"t\" {\n  step \"a\" { action = builtin.exec }\n  step \"b\" {\n    action = builtin.exec\n    x = step.a\n  }\n}\n",
			summary: "Incomplete step reference", line: 5, detail: "depends_on = [step.a]",
		},
		{
			name:    "incomplete reference",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    x = var\n  }\n}\n",
			summary: "Incomplete reference", line: 4,
		},
		{
			name:    "unknown reference root",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    x = module.foo\n  }\n}\n",
			summary: "Unknown reference", line: 4, detail: `"module"`,
		},
		{
			name:    "param in a plugin source",
			src:     "plugin \"p\" {\n  source = param.x\n}\n",
			summary: "param.* is not allowed here", line: 2, detail: "In a plugin's source you can use var.*.",
		},
		{
			name:    "step in a task lock",
			src:     "task \"t\" {\n  step \"a\" { action = builtin.exec }\n  lock = step.a.id\n}\n",
			summary: "step.* is not allowed here", line: 3,
		},
		{
			name:    "param in a param default",
			src:     "task \"t\" {\n  param \"a\" {}\n  param \"b\" {\n    default = param.a\n  }\n}\n",
			summary: "param.* is not allowed here", line: 4,
		},
		{
			name:    "param in an include path",
			src:     "include \"i\" {\n  path = param.p\n}\n",
			summary: "param.* is not allowed here", line: 2,
		},
	})
}

// TestLoadErrorsLocals: locals of a file and of a task.
func TestLoadErrorsLocals(t *testing.T) {
	runLoadErrors(t, []loadErrorCase{
		{
			name:    "undeclared local",
			src:     "locals {\n  machines = \"m\"\n}\ntask \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    x = local.machine\n  }\n}\n",
			summary: "Reference to undeclared local", line: 7, detail: `Did you mean "machines"?`,
		},
		{
			name:    "locals that need each other",
			src:     "locals {\n  a = local.b\n  b = \"${local.a}x\"\n}\n",
			summary: "Locals refer to each other", line: 2, detail: `a, b`,
		},
		{
			name:    "local that uses a param",
			src:     "locals {\n  a = param.name\n}\n",
			summary: "param.* is not allowed in a local", line: 2,
		},
		{
			name:    "task local that uses a step",
			src:     "task \"t\" {\n  locals {\n    a = step.s.x\n  }\n  step \"s\" { action = builtin.exec }\n}\n",
			summary: "step.* is not allowed here", line: 3,
		},
		{
			name:    "task local that shadows a file local",
			src:     "locals {\n  a = 1\n}\ntask \"t\" {\n  locals {\n    a = 2\n  }\n}\n",
			summary: "Local shadows a file local", line: 6,
		},
		{
			name:    "task locals that need each other",
			src:     "task \"t\" {\n  locals {\n    a = local.b\n    b = local.a\n  }\n}\n",
			summary: "Locals refer to each other", line: 3, detail: "task t",
		},
		{
			name:    "local of another task",
			src:     "task \"u\" {\n  locals {\n    mine = 1\n  }\n}\ntask \"t\" {\n  step \"s\" {\n    action = builtin.exec\n    x = local.mine\n  }\n}\n",
			summary: "Reference to undeclared local", line: 9, detail: "this file or task t",
		},
		{
			name:    "local declared twice",
			src:     "locals {\n  a = 1\n}\nlocals {\n  a = 2\n}\n",
			summary: `Duplicate local "a"`, line: 5,
		},
	})
}
