package main

import "testing"

func TestMACIsStableAndLocal(t *testing.T) {
	a, b := macFor("demo"), macFor("demo")
	if a != b || a[:9] != "52:54:00:" || macFor("other") == a {
		t.Fatalf("macFor: %s %s %s", a, b, macFor("other"))
	}
}
