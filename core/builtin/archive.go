package builtin

import "github.com/vmflow/vmflow/core/sdk"

func archiveActions(st *state) []*sdk.Action { return nil }
