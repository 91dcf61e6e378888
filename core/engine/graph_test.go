package engine

import (
	"slices"
	"testing"
)

func TestOrder(t *testing.T) {
	cases := []struct {
		name  string
		nodes []string
		deps  map[string][]string
		want  []string
		cycle []string
	}{
		{"empty", nil, nil, nil, nil},
		{"independent keep declaration order", []string{"b", "a", "c"}, nil, []string{"b", "a", "c"}, nil},
		{"chain", []string{"c", "b", "a"}, map[string][]string{"c": {"b"}, "b": {"a"}}, []string{"a", "b", "c"}, nil},
		{"diamond", []string{"d", "b", "c", "a"}, map[string][]string{"d": {"b", "c"}, "b": {"a"}, "c": {"a"}}, []string{"a", "b", "c", "d"}, nil},
		{"self cycle", []string{"a"}, map[string][]string{"a": {"a"}}, nil, []string{"a", "a"}},
		{"three cycle", []string{"x", "a", "b", "c"}, map[string][]string{"a": {"c"}, "b": {"a"}, "c": {"b"}}, nil, []string{"a", "b", "c", "a"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, cycle := order(c.nodes, c.deps)
			if !slices.Equal(got, c.want) || !slices.Equal(cycle, c.cycle) {
				t.Fatalf("order = %v, cycle %v; want %v, cycle %v", got, cycle, c.want, c.cycle)
			}
		})
	}
}
