package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// profileInfo is what a flake says about one profile.
type profileInfo struct {
	Requires []string `json:"requires"`
}

// knownProfiles reads the flake's profile list: <flake>/profiles.nix, an
// attribute set name → { requires = [ … ]; } that evaluates without
// nixpkgs (so no network is needed), else the flake's lib.profiles.
// storeArgs (see storeMode) go to the nix command.
func knownProfiles(ctx context.Context, flake string, storeArgs []string) (map[string]profileInfo, error) {
	var out []byte
	var err error
	file := filepath.Join(flake, "profiles.nix")
	if _, serr := os.Stat(file); serr == nil {
		args := append(append([]string{}, storeArgs...), "--eval", "--strict", "--json", file)
		out, err = exec.CommandContext(ctx, "nix-instantiate", args...).Output()
	} else {
		args := append(append([]string{}, nixFeatures...), "eval", "--json", "--impure", "--expr",
			fmt.Sprintf("(builtins.getFlake %q).lib.profiles", "path:"+flake))
		args = append(args, storeArgs...)
		out, err = exec.CommandContext(ctx, "nix", args...).Output()
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("reading the profiles of %s: %s", flake, nixErrorText(ee.Stderr))
		}
		return nil, fmt.Errorf("reading the profiles of %s: %w", flake, err)
	}
	profiles := map[string]profileInfo{}
	if err := json.Unmarshal(out, &profiles); err != nil {
		return nil, fmt.Errorf("the profiles of %s are not name → { requires = [ … ]; }: %w", flake, err)
	}
	return profiles, nil
}

// sortedNames lists a map's keys, sorted (an empty list, not nil, for
// none: it is an output).
func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// normalize makes a requested profile list canonical, so the same set
// always gives the same image: core is added, so is what a profile
// requires, duplicates go, and the list is sorted. An unknown profile is
// an error naming the known ones.
func normalize(requested []string, known map[string]profileInfo) ([]string, []string, error) {
	set := map[string]bool{}
	var added []string
	var add func(p string, by string) error
	add = func(p, by string) error {
		if set[p] {
			return nil
		}
		info, ok := known[p]
		if !ok {
			msg := fmt.Sprintf("unknown profile %q", p)
			if by != "" {
				msg += fmt.Sprintf(" (required by %s)", by)
			}
			return fmt.Errorf("%s; the known profiles are: %s", msg, strings.Join(sortedNames(known), ", "))
		}
		set[p] = true
		if by != "" {
			added = append(added, fmt.Sprintf("%s (required by %s)", p, by))
		}
		for _, r := range info.Requires {
			if err := add(r, p); err != nil {
				return err
			}
		}
		return nil
	}
	if _, ok := known["core"]; ok {
		if err := add("core", ""); err != nil {
			return nil, nil, err
		}
	}
	for _, p := range requested {
		if err := add(strings.TrimSpace(p), ""); err != nil {
			return nil, nil, err
		}
	}
	return sortedNames(set), added, nil
}
