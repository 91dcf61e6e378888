package sdk

import (
	"errors"
	"fmt"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/protocol"
)

// argError is an error about one argument. vmflow shows it at that
// argument's place in the task file.
type argError struct {
	path   cty.Path
	msg    string
	detail string
}

func (e *argError) Error() string {
	return protocol.FormatPath(e.path) + ": " + e.msg
}

// ArgError reports a problem with the named argument. It is a refusal:
// return it only before the action has changed anything, for vmflow
// takes a step that failed with argument errors alone as one that did
// nothing (a commit step refused so has not committed its run).
func ArgError(name, format string, args ...any) error {
	return &argError{path: cty.GetAttrPath(name), msg: fmt.Sprintf(format, args...)}
}

// ArgPathError reports a problem with an element inside an argument, for
// example cty.GetAttrPath("disks").IndexInt(1).GetAttr("size").
func ArgPathError(path cty.Path, format string, args ...any) error {
	return &argError{path: path, msg: fmt.Sprintf(format, args...)}
}

// toDiagnostics turns an action's error into diagnostics: argument errors
// keep their path; errors.Join'ed errors become one diagnostic each.
func toDiagnostics(err error) protocol.Diagnostics {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var ds protocol.Diagnostics
		for _, e := range j.Unwrap() {
			ds = append(ds, toDiagnostics(e)...)
		}
		return ds
	}
	var ae *argError
	if errors.As(err, &ae) {
		return protocol.Diagnostics{{Severity: protocol.Error, Summary: ae.msg, Detail: ae.detail, Path: ae.path}}
	}
	return protocol.Diagnostics{{Severity: protocol.Error, Summary: err.Error()}}
}
