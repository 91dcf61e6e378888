package sdk

import (
	"context"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/vmflow/vmflow/core/protocol"
)

// An action sees the limit vmflow put on its step, and a deadline a
// little before it (so that it can fail with its own message first); with
// no limit, no deadline. The action's default timeout is in its schema.
func TestDeadline(t *testing.T) {
	var got struct {
		deadline time.Time
		ok       bool
		limit    time.Duration
	}
	p, err := InProcess(&Plugin{Name: "t", Version: "1", Actions: []*Action{{
		Name:    "wait",
		Timeout: 90 * time.Second,
		Run: func(ctx context.Context, r *Request) error {
			got.deadline, got.ok = r.Deadline()
			got.limit = r.Timeout()
			return nil
		},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	schema, _ := p.Describe(context.Background())
	if a, _ := schema.Action("wait"); a.Timeout != 90*time.Second {
		t.Fatalf("schema timeout %s", a.Timeout)
	}
	for _, c := range []struct {
		limit, margin time.Duration
	}{{10 * time.Second, time.Second}, {time.Hour, 5 * time.Second}, {0, 0}} {
		start := time.Now()
		if _, ds, err := p.Run(context.Background(), protocol.RunRequest{Action: "wait", Inputs: cty.EmptyObjectVal, Timeout: c.limit}, func(protocol.Event) {}); err != nil || ds.HasErrors() {
			t.Fatal(err, ds.Err())
		}
		if got.limit != c.limit || got.ok != (c.limit > 0) {
			t.Fatalf("limit %s: got %s, deadline %v", c.limit, got.limit, got.ok)
		}
		if c.limit == 0 {
			continue
		}
		if want := start.Add(c.limit - c.margin); got.deadline.Before(want) || got.deadline.After(want.Add(time.Second)) {
			t.Errorf("limit %s: deadline %s after the start, want %s", c.limit, got.deadline.Sub(start), c.limit-c.margin)
		}
	}
}
