// Package vmflow holds what ships inside the vmflow binary besides code:
// the default VM lifecycle (tasks.hcl) and the profiles flake it builds
// images from, so that someone who installs only the binary has them.
package vmflow

import "embed"

// Lifecycle is tasks.hcl and profiles/ as they were when vmflow was built.
//
//go:embed tasks.hcl profiles
var Lifecycle embed.FS
