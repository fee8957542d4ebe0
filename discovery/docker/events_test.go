package docker

import (
	"net/netip"
	"syscall"
	"testing"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestStops(t *testing.T) {
	cases := []struct {
		signal     string
		stopSignal syscall.Signal
		action     string
		want       bool
	}{
		{"15", 0, "kill", true},
		{"9", 0, "kill", true},
		{"SIGINT", 0, "kill", true},
		{"QUIT", 0, "kill", true},
		{"", 0, "kill", true},
		{"1", 0, "kill", false},
		{"SIGUSR1", 0, "kill", false},
		{"28", syscall.SIGWINCH, "kill", true},
		{"SIGWINCH", syscall.SIGWINCH, "kill", true},
		{"10", 0, "stop", true},
	}
	for _, c := range cases {
		if got := stops(c.signal, c.stopSignal, c.action); got != c.want {
			t.Errorf("stops(%q, %v, %s) = %v, want %v", c.signal, c.stopSignal, c.action, got, c.want)
		}
	}
}

func TestFromInspect(t *testing.T) {
	in := ctypes.InspectResponse{
		ID:   "abc",
		Name: "/web-1",
		State: &ctypes.State{Running: true, Paused: false,
			Health: &ctypes.Health{Status: "starting"}},
		Config: &ctypes.Config{
			Labels:       map[string]string{"cutover.enable": "true"},
			Env:          []string{"VIRTUAL_HOST=a.test", "PATH=/bin", "VIRTUAL_PORT=81"},
			ExposedPorts: network.PortSet{network.MustParsePort("8080/tcp"): {}, network.MustParsePort("53/udp"): {}, network.MustParsePort("80/tcp"): {}},
		},
		HostConfig: &ctypes.HostConfig{NetworkMode: "bridge"},
		NetworkSettings: &ctypes.NetworkSettings{Networks: map[string]*network.EndpointSettings{
			"front": {IPAddress: netip.MustParseAddr("172.18.0.5")},
			"none":  nil,
		}},
	}
	c := fromInspect(in, true)
	if c.Name != "web-1" || !c.Running || c.Health != "starting" || c.NetworkMode != "bridge" {
		t.Errorf("got %+v", c)
	}
	if len(c.ExposedPorts) != 2 || c.ExposedPorts[0] != 80 || c.ExposedPorts[1] != 8080 {
		t.Errorf("exposed TCP ports %v, want [80 8080]", c.ExposedPorts)
	}
	if c.Env["VIRTUAL_HOST"] != "a.test" || c.Env["VIRTUAL_PORT"] != "81" || len(c.Env) != 2 {
		t.Errorf("env %v, want only the VIRTUAL_* variables", c.Env)
	}
	if c.Networks["front"] != netip.MustParseAddr("172.18.0.5") || c.Networks["none"].IsValid() {
		t.Errorf("networks %v", c.Networks)
	}
	if fromInspect(in, false).Env != nil {
		t.Error("env read without --compat")
	}
}
