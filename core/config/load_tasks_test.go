package config

import (
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// TestLoadValidTask: a task with params, a lock, steps, depends_on, if
// and outputs.
func TestLoadValidTask(t *testing.T) {
	runLoadValid(t, []loadValidCase{
		{
			name: "task with params, lock, steps, depends_on, if and outputs",
			files: memFS{root: `
plugin "hv" {
  source = "hypervisor"
}
variable "pool" {
  default = "default"
}
task "create" {
  description = "Create a VM in ${var.pool}"
  param "name" {
    type        = string
    description = "VM name"
  }
  param "memory" {
    type    = number
    default = 1024
  }
  param "start" {
    type    = bool
    default = true
  }
  param "profiles" {
    type    = list(string)
    default = ["core"]
  }
  lock = "vm-${param.name}"

  step "disk" {
    action = hv.create_disk
    size   = "10G"
    pool   = var.pool
    name   = param.name
  }
  step "define" {
    name    = param.name
    action  = hv.define
    memory  = param.memory
    disk    = step.disk.path
    network = "default"
  }
  step "start" {
    action     = hv.start
    if         = param.start && step.define.ok
    domain     = step.define.id
    depends_on = [step.disk, step.define]
  }
  step "report" {
    action = builtin.exec
    argv   = ["echo", step.define.id, step.define.id, step.disk.path]
    depends_on = [step.start]
  }
  output "id" {
    value       = step.define.id
    description = "Domain id"
  }
  output "secret" {
    value     = "${step.disk.path}:${step.define.id}"
    sensitive = true
  }
  output "plain" {
    value = param.name
  }
}
task "other" {
  step "x" { action = builtin.exec }
}
`},
			check: checkTaskFull,
		},
	})
}

// checkTaskFull checks what the loader made of the task "create" of
// TestLoadValidTask: its params, lock, steps and outputs.
func checkTaskFull(t *testing.T, p *Project) {
	equalStrings(t, "tasks", p.TaskNames(), []string{"create", "other"})
	tk := p.Task("create")
	if tk == nil || tk.LocalName != "create" || tk.File != p.Root || tk.DeclRange.Start.Line != 8 {
		t.Fatalf("task = %+v", tk)
	}
	if p.Task("nosuch") != nil {
		t.Error("Task(nosuch) != nil")
	}
	if tk.Description != "Create a VM in default" {
		t.Errorf("description = %q", tk.Description)
	}
	var pn []string
	for _, pr := range tk.Params {
		pn = append(pn, pr.Name)
	}
	equalStrings(t, "params", pn, []string{"name", "memory", "start", "profiles"})
	name, mem, start, prof := tk.Params[0], tk.Params[1], tk.Params[2], tk.Params[3]
	equalType(t, "name", name.Type, cty.String)
	equalType(t, "memory", mem.Type, cty.Number)
	equalType(t, "start", start.Type, cty.Bool)
	equalType(t, "profiles", prof.Type, cty.List(cty.String))
	if !name.Required() || mem.Required() || name.Description != "VM name" {
		t.Errorf("name required=%v desc=%q, memory required=%v", name.Required(), name.Description, mem.Required())
	}
	equalValue(t, "memory default", mem.Default, cty.NumberIntVal(1024))
	equalValue(t, "start default", start.Default, cty.True)
	equalValue(t, "profiles default", prof.Default, cty.ListVal([]cty.Value{cty.StringVal("core")}))
	if tk.Param("memory") != mem || tk.Param("nope") != nil {
		t.Error("Param lookup")
	}
	if tk.Lock == nil {
		t.Fatal("no lock")
	}
	params := cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("web")})
	equalValue(t, "lock", eval(t, p.Root, tk.Lock, params, cty.NilVal), cty.StringVal("vm-web"))

	var sn []string
	for _, s := range tk.Steps {
		sn = append(sn, s.Name)
	}
	equalStrings(t, "steps", sn, []string{"disk", "define", "start", "report"})
	disk, def, st, rep := tk.Steps[0], tk.Steps[1], tk.Steps[2], tk.Steps[3]
	if tk.Step("define") != def || tk.Step("nope") != nil {
		t.Error("Step lookup")
	}
	for _, c := range []struct {
		s              *Step
		plugin, action string
		args, deps     []string
		refs           []string
		hasIf          bool
	}{
		{disk, "hv", "create_disk", []string{"size", "pool", "name"}, nil, nil, false},
		{def, "hv", "define", []string{"name", "memory", "disk", "network"}, nil, []string{"step.disk.path"}, false},
		// Refs list the arguments' references in source order, then
		// the if's, then depends_on's (here if precedes domain in
		// the source but its refs come second).
		{st, "hv", "start", []string{"domain"}, []string{"step.disk", "step.define"}, []string{"step.define.id", "step.define.ok", "step.disk", "step.define"}, true},
		{rep, "builtin", "exec", []string{"argv"}, []string{"step.start"}, []string{"step.define.id", "step.disk.path", "step.start"}, false},
	} {
		s := c.s
		if s.Plugin != c.plugin || s.ActionName != c.action {
			t.Errorf("step %s action = %s.%s, want %s.%s", s.Name, s.Plugin, s.ActionName, c.plugin, c.action)
		}
		equalStrings(t, "step "+s.Name+" args", argNames(s), c.args)
		equalStrings(t, "step "+s.Name+" depends_on", refStrings(s.DependsOn), c.deps)
		equalStrings(t, "step "+s.Name+" refs", refStrings(s.Refs), c.refs)
		if (s.If != nil) != c.hasIf {
			t.Errorf("step %s if = %v", s.Name, s.If)
		}
		if s.Arg(ArgAction) != nil || s.Arg(ArgDependsOn) != nil || s.Arg(ArgIf) != nil {
			t.Errorf("step %s: meta-argument among Args", s.Name)
		}
	}
	if def.ActionRange.Start.Line != 36 {
		t.Errorf("define's action on line %d, want 36", def.ActionRange.Start.Line)
	}
	if st.DependsOn[1].Range.Start.Line != 45 {
		t.Errorf("depends_on range line %d", st.DependsOn[1].Range.Start.Line)
	}
	if disk.Arg("pool") == nil || disk.Arg("nope") != nil {
		t.Error("Arg lookup")
	}

	var on []string
	for _, o := range tk.Outputs {
		on = append(on, o.Name)
	}
	equalStrings(t, "outputs", on, []string{"id", "secret", "plain"})
	id, sec, plain := tk.Outputs[0], tk.Outputs[1], tk.Outputs[2]
	if id.Description != "Domain id" || id.Sensitive || !sec.Sensitive {
		t.Errorf("outputs: %+v %+v", id, sec)
	}
	equalStrings(t, "id refs", refStrings(id.Refs), []string{"step.define.id"})
	equalStrings(t, "secret refs", refStrings(sec.Refs), []string{"step.disk.path", "step.define.id"})
	equalStrings(t, "plain refs", refStrings(plain.Refs), nil)
}

// TestLoadValidParams: what the wizard reads of a param.
func TestLoadValidParams(t *testing.T) {
	runLoadValid(t, []loadValidCase{
		{
			name: "wizard, options and prompt",
			files: memFS{root: `
variable "nets" {
  default = ["nat", "bridge"]
}
task "create" {
  wizard = true
  param "name" {
    type        = string
    description = "VM name"
  }
  param "network" {
    type    = string
    default = "nat"
    options = var.nets
    prompt  = "Which network?"
  }
  param "profiles" {
    type    = list(string)
    default = ["base"]
    options = ["base", "dev", "gui"]
  }
  param "vcpus" {
    type    = number
    default = 2
    options = [1, 2, "4"]
  }
  step "s" { action = builtin.exec }
}
task "plain" {
  step "s" { action = builtin.exec }
}
`},
			check: func(t *testing.T, p *Project) {
				tk := p.Task("create")
				if !tk.Wizard || p.Task("plain").Wizard {
					t.Errorf("Wizard = %v, %v; want true, false", tk.Wizard, p.Task("plain").Wizard)
				}
				name, net, prof, cpus := tk.Param("name"), tk.Param("network"), tk.Param("profiles"), tk.Param("vcpus")
				if name.Options != nil || name.Question() != "VM name" {
					t.Errorf("name: options %v, question %q", name.Options, name.Question())
				}
				equalValue(t, "network options", cty.ListVal(net.Options), cty.ListVal([]cty.Value{str("nat"), str("bridge")}))
				if net.Prompt != "Which network?" || net.Question() != "Which network?" || net.MultiSelect() {
					t.Errorf("network: prompt %q, question %q, multi %v", net.Prompt, net.Question(), net.MultiSelect())
				}
				// A list param's options are values of its element type.
				equalValue(t, "profiles options", cty.ListVal(prof.Options), cty.ListVal([]cty.Value{str("base"), str("dev"), str("gui")}))
				if !prof.MultiSelect() || prof.Question() != "profiles" {
					t.Errorf("profiles: multi %v, question %q", prof.MultiSelect(), prof.Question())
				}
				// Options convert to the param's type, like a default does.
				equalValue(t, "vcpus options", cty.ListVal(cpus.Options),
					cty.ListVal([]cty.Value{cty.NumberIntVal(1), cty.NumberIntVal(2), cty.NumberIntVal(4)}))
				equalStrings(t, "vcpus option args", cpus.OptionArgs(), []string{"1", "2", "4"})
			},
		},
	})
}

// TestLoadErrorsTasks: bad task, step and output blocks, actions and
// depends_on.
func TestLoadErrorsTasks(t *testing.T) {
	runLoadErrors(t, []loadErrorCase{
		{
			name:    "description not a string",
			src:     "task \"t\" {\n  description = [\"x\"]\n}\n",
			summary: "Invalid description", line: 2,
		},
		{
			name:    "output without value",
			src:     "task \"t\" {\n  output \"o\" {\n    description = \"x\"\n  }\n}\n",
			summary: "Missing required argument", line: 2, detail: `"value"`,
		},
		{
			name:    "block inside a step",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    opts {\n    }\n  }\n}\n",
			summary: "Unexpected \"opts\" block", line: 4,
		},
		{
			name:    "unknown block inside a task",
			src:     "task \"t\" {\n  steps \"a\" {\n  }\n}\n",
			summary: "Unsupported block type", line: 2,
		},
		{
			name:    "step without action",
			src:     "task \"t\" {\n  step \"a\" {\n    x = 1\n  }\n}\n",
			summary: "Missing action", line: 2, detail: `Step "a" needs action`,
		},
		{
			name:    "step with both action and task",
			src:     "task \"u\" {}\ntask \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    task = \"u\"\n  }\n}\n",
			summary: "Both action and task", line: 5,
		},
		{
			name:    "action is a string",
			src:     "task \"t\" {\n  step \"a\" {\n    action = \"builtin.exec\"\n  }\n}\n",
			summary: "Invalid action", line: 3,
		},
		{
			name:    "action without an action name",
			src:     "task \"t\" {\n  step \"a\" {\n\n    action = builtin\n  }\n}\n",
			summary: "Invalid action", line: 4,
		},
		{
			name:    "action too long",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec.more\n  }\n}\n",
			summary: "Invalid action", line: 3,
		},
		{
			name:    "action with a numeric index",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin[0]\n  }\n}\n",
			summary: "Invalid action", line: 3,
		},
		{
			name:    "depends_on is not a list",
			src:     "task \"t\" {\n  step \"a\" { action = builtin.exec }\n  step \"b\" {\n    action = builtin.exec\n    depends_on = step.a\n  }\n}\n",
			summary: "Invalid depends_on", line: 5, detail: "must be a list",
		},
		{
			name:    "depends_on element is not a step",
			src:     "variable \"v\" {\n  default = 1\n}\ntask \"t\" {\n  step \"b\" {\n    action = builtin.exec\n    depends_on = [\n      var.v,\n    ]\n  }\n}\n",
			summary: "Invalid depends_on", line: 8, detail: "step.<name>",
		},
		{
			name:    "depends_on a step output",
			src:     "task \"t\" {\n  step \"a\" { action = builtin.exec }\n  step \"b\" {\n    action = builtin.exec\n    depends_on = [step.a.out]\n  }\n}\n",
			summary: "Invalid depends_on", line: 5,
		},
		{
			name:    "depends_on an undeclared step",
			src:     "task \"t\" {\n  step \"first\" { action = builtin.exec }\n  step \"b\" {\n    action = builtin.exec\n    depends_on = [step.frist]\n  }\n}\n",
			summary: "Reference to undeclared step", line: 5, detail: `Task "t" has no step named "frist". Did you mean "first"?`,
		},
		{
			name:    "step referring to itself",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    x = step.a.out\n  }\n}\n",
			summary: "Self-referencing step", line: 4, detail: `Step "a" cannot use its own outputs.`,
		},
		{
			name:    "step condition referring to itself",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec\n\n    if = step.a.ok\n  }\n}\n",
			summary: "Self-referencing step", line: 5,
		},
		{
			name:    "step depending on itself",
			src:     "task \"t\" {\n  step \"a\" {\n    action = builtin.exec\n    depends_on = [step.a]\n  }\n}\n",
			summary: "Self-referencing step", line: 4, detail: `Step "a" cannot depend on itself.`,
		},
	})
}

// TestLoadErrorsCalls: steps that call a task.
func TestLoadErrorsCalls(t *testing.T) {
	runLoadErrors(t, []loadErrorCase{
		{
			name:    "task call of an unknown task",
			src:     "task \"provision\" {}\ntask \"t\" {\n  step \"a\" {\n    task = \"provison\"\n  }\n}\n",
			summary: "Unknown task", line: 4, detail: `Did you mean "provision"?`,
		},
		{
			name:    "task call with an unknown param",
			src:     "task \"u\" {\n  param \"name\" {\n    type = string\n    default = \"\"\n  }\n}\ntask \"t\" {\n  step \"a\" {\n    task = \"u\"\n    nmae = \"x\"\n  }\n}\n",
			summary: "Unknown param", line: 10, detail: `Task u has no param "nmae". Did you mean "name"? Its params: name.`,
		},
		{
			name:    "task call without a required param",
			src:     "task \"u\" {\n  param \"name\" { type = string }\n}\ntask \"t\" {\n  step \"a\" {\n    task = \"u\"\n  }\n}\n",
			summary: "Missing param", line: 5, detail: `param "name" has no default`,
		},
		{
			name:    "task calls in a cycle",
			src:     "task \"u\" {\n  step \"b\" {\n    task = \"t\"\n  }\n}\ntask \"t\" {\n  step \"a\" {\n    task = \"u\"\n  }\n}\n",
			summary: "Task calls form a cycle", line: 8, detail: `u → t → u`,
		},
		{
			name:    "task that calls itself",
			src:     "task \"t\" {\n  step \"a\" {\n    task = \"t\"\n  }\n}\n",
			summary: "Task calls form a cycle", line: 3, detail: `t → t`,
		},
		{
			name:    "commit on a task call",
			src:     "task \"u\" {}\ntask \"t\" {\n  step \"a\" {\n    task = \"u\"\n    commit = true\n  }\n}\n",
			summary: "Commit on a task call", line: 5,
		},
		{
			name:    "task is not a string",
			src:     "task \"u\" {}\ntask \"t\" {\n  step \"a\" {\n    task = u\n  }\n}\n",
			summary: "Invalid task", line: 4,
		},
	})
}

// TestLoadErrorsParams: bad params, their options and what the wizard
// reads of them.
func TestLoadErrorsParams(t *testing.T) {
	runLoadErrors(t, []loadErrorCase{
		{
			name:    "required param after optional",
			src:     "task \"t\" {\n  param \"a\" {\n    default = \"x\"\n  }\n  param \"b\" {}\n}\n",
			summary: "Required param after an optional one", line: 5, detail: `"b" (required) cannot follow "a"`,
		},
		{
			name:    "invalid param default",
			src:     "task \"t\" {\n  param \"n\" {\n    type    = number\n    default = \"many\"\n  }\n}\n",
			summary: "Invalid default value for param", line: 4,
		},
		{
			name:    "options on a map param",
			src:     "task \"t\" {\n  param \"m\" {\n    type    = map(string)\n    options = [\"a\"]\n  }\n}\n",
			summary: "Invalid options for param", line: 4, detail: `options need a param of type string, number or bool`,
		},
		{
			name:    "option of the wrong type",
			src:     "task \"t\" {\n  param \"n\" {\n    type    = number\n    options = [\n      1,\n      \"two\",\n    ]\n  }\n}\n",
			summary: "Invalid options for param", line: 6, detail: `Option "two" of "n" is not a number`,
		},
		{
			name:    "list option of the wrong type",
			src:     "task \"t\" {\n  param \"ports\" {\n    type    = list(number)\n    options = [22, \"http\"]\n  }\n}\n",
			summary: "Invalid options for param", line: 4, detail: `Option "http" of "ports" is not a number`,
		},
		{
			name:    "options not a list",
			src:     "task \"t\" {\n  param \"net\" {\n    options = \"nat\"\n  }\n}\n",
			summary: "Invalid options for param", line: 3, detail: `options must be a list`,
		},
		{
			name:    "options empty",
			src:     "task \"t\" {\n  param \"net\" {\n\n    options = []\n  }\n}\n",
			summary: "Invalid options for param", line: 4, detail: `is empty`,
		},
		{
			name:    "option listed twice",
			src:     "task \"t\" {\n  param \"net\" {\n    options = [\"nat\", \"nat\"]\n  }\n}\n",
			summary: "Invalid options for param", line: 3, detail: `Option "nat" of "net" is listed twice`,
		},
		{
			name:    "null option",
			src:     "task \"t\" {\n  param \"net\" {\n    options = [null]\n  }\n}\n",
			summary: "Invalid options for param", line: 3, detail: `is null`,
		},
		{
			name:    "options use a param",
			src:     "task \"t\" {\n  param \"a\" {}\n  param \"b\" {\n    options = [param.a]\n  }\n}\n",
			summary: "param.* is not allowed here", line: 4, detail: "In a param's options you can use var.*",
		},
		{
			name:    "default outside the options",
			src:     "task \"t\" {\n  param \"net\" {\n    options = [\"nat\", \"bridge\"]\n    default = \"host\"\n  }\n}\n",
			summary: "Default value not among the options", line: 4, detail: `The default of "net": "host" is not one of its options: "nat", "bridge".`,
		},
		{
			name:    "list default outside the options",
			src:     "task \"t\" {\n  param \"p\" {\n    type    = list(string)\n    options = [\"base\", \"dev\"]\n    default = [\"base\", \"gui\"]\n  }\n}\n",
			summary: "Default value not among the options", line: 5, detail: `"gui" is not one of its options: "base", "dev"`,
		},
		{
			name:    "number default outside the options",
			src:     "task \"t\" {\n  param \"n\" {\n    type    = number\n    options = [1, 2]\n    default = 3\n  }\n}\n",
			summary: "Default value not among the options", line: 5, detail: `3 is not one of its options: 1, 2`,
		},
		{
			name:    "prompt not a string",
			src:     "task \"t\" {\n  param \"p\" {\n    prompt = [\"Name?\"]\n  }\n}\n",
			summary: "Invalid prompt", line: 3,
		},
		{
			name:    "wizard not a bool",
			src:     "task \"t\" {\n  wizard = \"yes\"\n}\n",
			summary: "Invalid wizard", line: 2,
		},
		{
			name:    "wizard on a param",
			src:     "task \"t\" {\n  param \"p\" {\n    wizard = true\n  }\n}\n",
			summary: "Unsupported argument", line: 3,
		},
	})
}
