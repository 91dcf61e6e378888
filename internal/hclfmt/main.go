// Command hclfmt formats task files the way hclwrite does (the HCL
// equivalent of gofmt): `make fmt` runs it on every tracked .hcl file, and
// a test keeps the shipped ones formatted.
//
//	go run ./internal/hclfmt [-l] FILE…
//
// -l lists the files that are not formatted and changes nothing.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2/hclwrite"
)

func main() {
	list := flag.Bool("l", false, "list unformatted files, change nothing")
	flag.Parse()
	status := 0
	for _, p := range flag.Args() {
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			status = 1
			continue
		}
		f := hclwrite.Format(b)
		if bytes.Equal(b, f) {
			continue
		}
		if *list {
			fmt.Println(p)
			continue
		}
		if err := os.WriteFile(p, f, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			status = 1
		}
	}
	os.Exit(status)
}
