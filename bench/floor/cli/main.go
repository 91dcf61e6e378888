// Command cli is the floor of a vmflow command's start-up (issue 15,
// goals 1 and 5): a Go program that links the libraries vmflow's fixed
// choices bring (go-plugin with gRPC, hcl, cty's functions, urfave/cli)
// and does nothing else. Their package initialisation and page faults
// are paid by every vmflow command, `vmflow list` included, before main
// runs; bench/commands.sh times this binary beside vmflow and just.
package main

import (
	"os"

	_ "github.com/hashicorp/go-plugin"
	_ "github.com/hashicorp/hcl/v2/hclsyntax"
	_ "github.com/urfave/cli/v2"
	_ "github.com/zclconf/go-cty/cty/function/stdlib"
)

func main() { os.Stdout.WriteString("floor\n") }
