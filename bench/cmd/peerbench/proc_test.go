package main

import (
	"os"
	"slices"
	"syscall"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	// The name may hold spaces and parentheses.
	line := "1234 (odd) name) S 1 1200 1200 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 4 0 1000 0 0\n"
	st, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.pgrp != 1200 || st.cpu != 250+50+7+3 {
		t.Errorf("parseProcStat = %+v, want pgrp 1200, cpu 310", st)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 y 3 4 5 6 7 8 9 10 11 12 13 14 15"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) succeeded", bad)
		}
	}
}

func TestParseHWM(t *testing.T) {
	status := "Name:\tcutover\nVmPeak:\t 1000 kB\nVmHWM:\t   34560 kB\nVmRSS:\t 3000 kB\n"
	if got := parseHWM([]byte(status)); got != 34560 {
		t.Errorf("parseHWM = %d, want 34560", got)
	}
	if got := parseHWM([]byte("Name:\tkthreadd\n")); got != 0 {
		t.Errorf("parseHWM without VmHWM = %d, want 0", got)
	}
}

func TestParseSystemBusy(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	stat := "cpu  100 10 50 9999 99 7 8 30 0 0\ncpu0 1 2 3\n"
	if got, want := parseSystemBusy([]byte(stat)), float64(100+10+50+30)/clockTicks; got != want {
		t.Errorf("parseSystemBusy = %v, want %v", got, want)
	}
}

func TestGroupOfThisProcess(t *testing.T) {
	pids := groupPIDs(syscall.Getpgrp())
	if !slices.Contains(pids, os.Getpid()) {
		t.Fatalf("groupPIDs(own group) = %v, lacks %d", pids, os.Getpid())
	}
	if groupPeakRSS(syscall.Getpgrp()) <= 0 {
		t.Error("groupPeakRSS(own group) <= 0")
	}
	if selfCPU() < 0 || groupCPU(syscall.Getpgrp()) < selfCPU() {
		t.Errorf("groupCPU %v < selfCPU %v", groupCPU(syscall.Getpgrp()), selfCPU())
	}
}
