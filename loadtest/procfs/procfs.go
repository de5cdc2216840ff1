// Package procfs reads what a load run reports about the machine and the
// processes under test from Linux's /proc: CPU and memory facts, which process
// listens on a port, a process's resident memory and CPU time.
package procfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"natter/loadtest/report"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/<pid>/stat; 100 on
// every Linux architecture Go runs on.
const clockTicks = 100

// Machine describes this machine.
func Machine() report.Machine {
	m := report.Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if kb, err := meminfo("MemTotal"); err == nil {
		m.MemoryGB = float64(kb) / (1 << 20)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.Load = strings.Join(f[:3], " ")
		}
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		m.FDLimit = rl.Cur
	}
	return m
}

func meminfo(key string) (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s not in /proc/meminfo", key)
}

// RSS returns pid's resident set size in bytes.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// CPU returns the CPU time pid has used so far (user + system).
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields resume after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // utime: field 14
	st, err2 := strconv.ParseInt(f[12], 10, 64) // stime: field 15
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed stat times")
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// Comm returns pid's command name (at most 15 bytes).
func Comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// FindByComm returns the pids whose command name is one of names.
func FindByComm(names ...string) map[string][]int {
	out := map[string][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		c := Comm(pid)
		for _, n := range names {
			if c == n {
				out[n] = append(out[n], pid)
			}
		}
	}
	return out
}

// ListenerPID returns the process that has a TCP socket listening on port (IPv4
// or IPv6, any address), by finding the socket's inode in /proc/net/tcp{,6} and
// then a process holding it among its file descriptors.
func ListenerPID(port int) (int, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if err := listenInodes(f, port, inodes); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on port %d", port)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		if err != nil {
			continue // another user's process, or gone
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join("/proc", e.Name(), "fd", fd.Name()))
			if err != nil {
				continue
			}
			if ino, ok := strings.CutPrefix(link, "socket:["); ok && inodes[strings.TrimSuffix(ino, "]")] {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("port %d: listening socket found but no process of ours holds it", port)
}

// listenInodes adds the inodes of sockets in LISTEN state (0A) on port from a
// /proc/net/tcp-style table.
func listenInodes(path string, port int, into map[string]bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 || fs[3] != "0A" || !strings.HasSuffix(fs[1], want) {
			continue
		}
		into[fs[9]] = true
	}
	return sc.Err()
}

// Watch follows the CPU time of a set of processes, and of the whole machine,
// over a window.
type Watch struct {
	start time.Time
	busy0 time.Duration
	procs []watched
}

// machineBusy is the CPU time all cores spent outside idle and iowait since boot,
// from the first line of /proc/stat.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("malformed /proc/stat")
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}

type watched struct {
	name string
	pid  int
	cpu0 time.Duration
}

// Start begins a window over the given processes (name -> pid).
func Start(procs map[string]int) *Watch {
	w := &Watch{start: time.Now()}
	w.busy0, _ = machineBusy()
	for name, pid := range procs {
		c, err := CPU(pid)
		if err != nil {
			continue
		}
		w.procs = append(w.procs, watched{name: name, pid: pid, cpu0: c})
	}
	return w
}

// Stop ends the window and returns each process's CPU use over it and its RSS
// now, then "other processes" (the machine's busy time not in the list: other
// programs, and kernel work such as softirqs not charged to a process) and the
// machine's total.
func (w *Watch) Stop() []report.Process {
	wall := time.Since(w.start)
	busy, berr := machineBusy()
	var out []report.Process
	var listed time.Duration
	for _, p := range w.procs {
		c, err := CPU(p.pid)
		if err != nil {
			continue
		}
		rss, _ := RSS(p.pid)
		listed += c - p.cpu0
		out = append(out, report.Process{Name: p.name, PID: p.pid,
			CPUPct: float64(c-p.cpu0) / float64(wall) * 100, RSSMB: float64(rss) / (1 << 20)})
	}
	slices.SortFunc(out, func(a, b report.Process) int { return strings.Compare(a.Name, b.Name) })
	if berr == nil && w.busy0 > 0 {
		total := busy - w.busy0
		out = append(out,
			report.Process{Name: "other processes and kernel", CPUPct: max(float64(total-listed), 0) / float64(wall) * 100},
			report.Process{Name: "machine total", CPUPct: float64(total) / float64(wall) * 100})
	}
	return out
}

// StackProcesses finds natter's processes and its services on this machine by
// name: the edges and workers `task up` builds, NATS, MariaDB/MySQL and Redis,
// and this load process. Several edges get numbered names.
func StackProcesses() map[string]int {
	out := map[string]int{"loadtest (this process)": os.Getpid()}
	found := FindByComm("natter-edge", "natter-function", "nats-server", "mariadbd", "mysqld", "redis-server")
	for comm, pids := range found {
		for i, pid := range pids {
			name := comm
			if comm == "natter-function" {
				name = "natter-functions"
			}
			if len(pids) > 1 {
				name = fmt.Sprintf("%s#%d", name, i+1)
			}
			out[name] = pid
		}
	}
	return out
}
