package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc CPU times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// procStat is what peerbench reads from /proc/PID/stat.
type procStat struct {
	pgrp int
	// cpu is utime+stime of every thread, plus cutime+cstime of children
	// that exited and were waited for, in clock ticks.
	cpu int64
}

// parseProcStat parses the content of /proc/PID/stat. The command name, in
// parentheses, may hold spaces and parentheses: fields are counted from the
// last ')'.
func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("stat %q: no ')'", b)
	}
	// f[0] is field 3 (state) of proc(5).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("stat: %d fields after the name, want 15 or more", len(f))
	}
	var st procStat
	var err error
	if st.pgrp, err = strconv.Atoi(f[2]); err != nil {
		return procStat{}, fmt.Errorf("stat pgrp: %w", err)
	}
	for _, k := range f[11:15] { // utime, stime, cutime, cstime
		v, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("stat cpu times: %w", err)
		}
		st.cpu += v
	}
	return st, nil
}

// groupPIDs returns the processes of process group pgid.
func groupPIDs(pgid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		if st, err := parseProcStat(b); err == nil && st.pgrp == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// groupCPU returns the CPU seconds used so far by process group pgid:
// every process, every thread, and the children they reaped.
func groupCPU(pgid int) float64 {
	var ticks int64
	for _, pid := range groupPIDs(pgid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		if st, err := parseProcStat(b); err == nil {
			ticks += st.cpu
		}
	}
	return float64(ticks) / clockTicks
}

// selfCPU returns peerbench's own CPU seconds (the TCP load runs inside it).
func selfCPU() float64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	st, err := parseProcStat(b)
	if err != nil {
		return 0
	}
	return float64(st.cpu) / clockTicks
}

// groupPeakRSS returns the sum of the peak resident set sizes (VmHWM) of the
// processes of group pgid, in KiB. For a multi-process proxy (nginx: a
// master and its workers) the sum counts pages they share more than once,
// so it is an upper bound.
func groupPeakRSS(pgid int) int64 {
	var kib int64
	for _, pid := range groupPIDs(pgid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		kib += parseHWM(b)
	}
	return kib
}

// parseHWM returns the VmHWM of a /proc/PID/status content, in KiB; zero
// when absent (kernel threads, zombies).
func parseHWM(b []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		v, _ := strconv.ParseInt(f[0], 10, 64)
		return v
	}
	return 0
}

// systemBusy returns the CPU seconds all CPUs spent running processes since
// boot, from the first line of /proc/stat (user nice system idle iowait irq
// softirq steal …): user, nice, system and steal. Interrupt time is left
// out: the loopback traffic of the benchmark itself is processed there and
// is charged to no process. Steal counts: it is time another tenant of the
// host took.
func systemBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	return parseSystemBusy(b)
}

func parseSystemBusy(b []byte) float64 {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, k := range f[1:9] {
		if i >= 3 && i <= 6 { // idle, iowait, irq, softirq
			continue
		}
		v, _ := strconv.ParseInt(k, 10, 64)
		ticks += v
	}
	return float64(ticks) / clockTicks
}
