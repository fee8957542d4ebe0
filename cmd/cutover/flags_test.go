package main

import (
	"strings"
	"testing"
	"time"
)

func TestEnvironmentSetsFlagsAndCommandLineWins(t *testing.T) {
	t.Setenv("CUTOVER_HTTP_ADDR", ":9999")
	t.Setenv("CUTOVER_SHUTDOWN_TIMEOUT", "5s")
	fs := newFlagSet("x", "")
	addr := fs.String("http-addr", ":80", "")
	admin := fs.String("admin-addr", ":8081", "")
	timeout := fs.Duration("shutdown-timeout", time.Second, "")
	if err := fs.parse([]string{"--admin-addr", ":1"}); err != nil {
		t.Fatal(err)
	}
	if *addr != ":9999" || *timeout != 5*time.Second || *admin != ":1" {
		t.Errorf("got %s %s %s", *addr, *timeout, *admin)
	}
	t.Setenv("CUTOVER_ADMIN_ADDR", ":2")
	fs = newFlagSet("x", "")
	admin = fs.String("admin-addr", ":8081", "")
	if err := fs.parse([]string{"--admin-addr", ":3"}); err != nil || *admin != ":3" {
		t.Errorf("command line should win over the environment: %s %v", *admin, err)
	}
}

func TestBadEnvironmentValueNamesTheVariable(t *testing.T) {
	t.Setenv("CUTOVER_ATTEMPTS", "many")
	fs := newFlagSet("x", "")
	fs.Int("attempts", 3, "")
	err := fs.parse(nil)
	if err == nil || !strings.Contains(err.Error(), "CUTOVER_ATTEMPTS") {
		t.Fatalf("error %v: want it to name CUTOVER_ATTEMPTS", err)
	}
}

func TestStrayArgumentIsAnError(t *testing.T) {
	fs := newFlagSet("x", "")
	if err := fs.parse([]string{"extra"}); err == nil {
		t.Fatal("want an error for a stray argument")
	}
}
