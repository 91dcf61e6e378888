package engine

import (
	"strings"
)

// order sorts nodes so that every node comes after its dependencies,
// keeping declaration order among nodes that are ready together. deps maps
// a node to the nodes it depends on. When there is a cycle, order returns
// it (a → b → a) and no order.
func order(nodes []string, deps map[string][]string) (sorted []string, cycle []string) {
	indeg := make(map[string]int, len(nodes))
	users := make(map[string][]string, len(nodes))
	for _, n := range nodes {
		indeg[n] += 0
		for _, d := range deps[n] {
			indeg[n]++
			users[d] = append(users[d], n)
		}
	}
	done := make(map[string]bool, len(nodes))
	for len(sorted) < len(nodes) {
		progressed := false
		for _, n := range nodes {
			if done[n] || indeg[n] > 0 {
				continue
			}
			done[n] = true
			sorted = append(sorted, n)
			for _, u := range users[n] {
				indeg[u]--
			}
			progressed = true
		}
		if !progressed {
			return nil, findCycle(nodes, deps, done)
		}
	}
	return sorted, nil
}

// findCycle returns one cycle among the nodes not yet sorted.
func findCycle(nodes []string, deps map[string][]string, done map[string]bool) []string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var found []string
	var visit func(n string) bool
	visit = func(n string) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, d := range deps[n] {
			if done[d] {
				continue
			}
			switch color[d] {
			case grey:
				for i, s := range stack {
					if s == d {
						found = append(append([]string(nil), stack[i:]...), d)
						return true
					}
				}
			case white:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, n := range nodes {
		if !done[n] && color[n] == white && visit(n) {
			// found lists dependencies from user to dependency; show the
			// order in which they would have to run.
			for i, j := 0, len(found)-1; i < j; i, j = i+1, j-1 {
				found[i], found[j] = found[j], found[i]
			}
			return found
		}
	}
	return nil
}

func formatCycle(c []string) string {
	parts := make([]string, len(c))
	for i, n := range c {
		parts[i] = "step." + n
	}
	return strings.Join(parts, " → ")
}
