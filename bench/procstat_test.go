package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses; fields are counted
	// from the last ')'. utime 150 and stime 50 ticks: 2 s.
	stat := "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 1 0 12345 1000000 200 18446744073709551615\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if got != 2*time.Second {
		t.Errorf("cpu = %v, want 2s", got)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 1 0"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) succeeded", bad)
		}
	}
}

func TestParseStatusRSS(t *testing.T) {
	status := "Name:\tmosquitto\nVmPeak:\t   20000 kB\nVmRSS:\t    8664 kB\nThreads:\t1\n"
	kb, err := parseStatusRSS(strings.NewReader(status))
	if err != nil || kb != 8664 {
		t.Errorf("rss = %d, %v; want 8664", kb, err)
	}
	if _, err := parseStatusRSS(strings.NewReader("Name:\tx\n")); err == nil {
		t.Error("no VmRSS line: want an error")
	}
}

func TestParseIOWriteBytes(t *testing.T) {
	io := "rchar: 100\nwchar: 5000\nsyscr: 3\nsyscw: 4\nread_bytes: 0\nwrite_bytes: 4096\ncancelled_write_bytes: 0\n"
	n, err := parseIOWriteBytes(strings.NewReader(io))
	if err != nil || n != 4096 {
		t.Errorf("write_bytes = %d, %v; want 4096", n, err)
	}
	for _, bad := range []string{"rchar: 1\n", "write_bytes: x\n"} {
		if _, err := parseIOWriteBytes(strings.NewReader(bad)); err == nil {
			t.Errorf("parseIOWriteBytes(%q) succeeded", bad)
		}
	}
}

func TestProcSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	pid := os.Getpid()
	if _, err := procCPU(pid); err != nil {
		t.Error(err)
	}
	if kb, err := procRSS(pid); err != nil || kb <= 0 {
		t.Errorf("rss of self = %d, %v", kb, err)
	}
	m := startCPU(pid)
	if _, ok, err := m.stop(); !ok || err != nil {
		t.Errorf("cpu meter: ok=%v err=%v", ok, err)
	}
	if _, ok, _ := startCPU(0).stop(); ok {
		t.Error("pid 0 measured something")
	}
	if _, err := os.Stat("/proc/self/io"); err == nil {
		if _, ok, err := startIO(pid).stop(); !ok || err != nil {
			t.Errorf("io meter: ok=%v err=%v", ok, err)
		}
	}
	if _, ok, _ := startIO(0).stop(); ok {
		t.Error("io of pid 0 measured something")
	}
}
