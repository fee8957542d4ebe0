package reqctx

import (
	"context"
	"testing"
	"time"
)

func TestCancelFiresTheArmedFunctionOnce(t *testing.T) {
	ctx, cancel, h := WithCancel(context.Background())
	defer cancel()
	if From(ctx) != h {
		t.Fatal("From does not find the context's Hook")
	}
	runs := 0
	f := func() {
		if ctx.Err() == nil {
			t.Error("the hook ran before the context ended")
		}
		runs++
	}
	if !h.Arm(&f) {
		t.Fatal("an empty Hook refused to be armed")
	}
	g := func() {}
	if h.Arm(&g) {
		t.Error("an armed Hook took a second function")
	}
	cancel()
	cancel()
	if runs != 1 {
		t.Errorf("the armed function ran %d times, want 1", runs)
	}
	if h.Disarm(&f) {
		t.Error("Disarm reported removing a function that Fire took")
	}
}

func TestDisarmedFunctionDoesNotRun(t *testing.T) {
	_, cancel, h := WithCancel(context.Background())
	ran := false
	f := func() { ran = true }
	h.Arm(&f)
	if !h.Disarm(&f) {
		t.Fatal("Disarm of the armed function failed")
	}
	g := func() {}
	if h.Disarm(&g) {
		t.Error("Disarm removed a function that was not armed")
	}
	cancel()
	if ran {
		t.Error("a disarmed function ran")
	}
}

// A context derived from the Hook's can end on its own (a deadline) without
// firing it: From gives no Hook for it.
func TestFromIgnoresDerivedContexts(t *testing.T) {
	ctx, cancel, _ := WithCancel(context.Background())
	defer cancel()
	child, stop := context.WithCancel(ctx)
	defer stop()
	if From(child) != nil {
		t.Error("From gave the parent's Hook for a derived context")
	}
	if From(context.Background()) != nil {
		t.Error("From gave a Hook for a context without one")
	}
	if From(context.WithValue(ctx, otherKey{}, 1)) != nil {
		t.Error("From gave the Hook for a context with a value added")
	}
}

type otherKey struct{}

// A context that ends because its parent did fires its Hook as well.
func TestParentCancelFiresTheHook(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel, h := WithCancel(parent)
	defer cancel()
	fired := make(chan error, 1)
	f := func() { fired <- ctx.Err() }
	h.Arm(&f)
	cancelParent()
	select {
	case err := <-fired:
		if err == nil {
			t.Error("the hook fired before the context ended")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the parent's cancel did not fire the hook")
	}
}
