package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of utime and stime in /proc/PID/stat: USER_HZ,
// which Linux fixes at 100 for user space on every architecture.
const clockTick = 10 * time.Millisecond

// procCPU returns the user plus system CPU time process pid has used,
// from /proc/PID/stat (fields 14 and 15).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time: %w", err)
	}
	return parseStatCPU(b)
}

// parseStatCPU parses the contents of /proc/PID/stat. The command name
// (field 2) is in parentheses and may contain spaces, so fields are counted
// from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc stat: no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so utime (14) and stime (15) are f[11], f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc stat: %d fields after the command name, want at least 13", len(f))
	}
	ut, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc stat utime: %w", err)
	}
	st, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc stat stime: %w", err)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// procRSS returns the resident set size of process pid in KiB, the VmRSS
// line of /proc/PID/status.
func procRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	defer f.Close()
	return parseStatusRSS(f)
}

func parseStatusRSS(r io.Reader) (int64, error) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		v, ok := strings.CutPrefix(s.Text(), "VmRSS:")
		if !ok {
			continue
		}
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		kb, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse VmRSS: %w", err)
		}
		return kb, nil
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	return 0, fmt.Errorf("parse status: no VmRSS line")
}

// cpuMeter measures the CPU time a broker process uses over a run.
type cpuMeter struct {
	pid   int
	start time.Duration
	err   error
}

// startCPU starts measuring process pid; pid 0 measures nothing.
func startCPU(pid int) *cpuMeter {
	m := &cpuMeter{pid: pid}
	if pid > 0 {
		m.start, m.err = procCPU(pid)
	}
	return m
}

// stop returns the CPU time used since startCPU, or ok false when there is
// no process to measure.
func (m *cpuMeter) stop() (d time.Duration, ok bool, err error) {
	if m.pid <= 0 {
		return 0, false, nil
	}
	if m.err != nil {
		return 0, false, m.err
	}
	end, err := procCPU(m.pid)
	if err != nil {
		return 0, false, err
	}
	return end - m.start, true, nil
}

// procWriteBytes returns the bytes process pid has caused to be sent to
// the storage layer, the write_bytes line of /proc/PID/io: what reaches
// the disk, unlike wchar, which counts every write call.
func procWriteBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, fmt.Errorf("read io counters: %w", err)
	}
	defer f.Close()
	return parseIOWriteBytes(f)
}

func parseIOWriteBytes(r io.Reader) (int64, error) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		v, ok := strings.CutPrefix(s.Text(), "write_bytes:")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse write_bytes: %w", err)
		}
		return n, nil
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("read io: %w", err)
	}
	return 0, fmt.Errorf("parse io: no write_bytes line")
}

// ioMeter measures the bytes a broker process writes to disk over a run.
type ioMeter struct {
	pid   int
	start int64
	err   error
}

// startIO starts measuring process pid; pid 0 measures nothing.
func startIO(pid int) *ioMeter {
	m := &ioMeter{pid: pid}
	if pid > 0 {
		m.start, m.err = procWriteBytes(pid)
	}
	return m
}

// stop returns the bytes written since startIO, or ok false when there is
// no process to measure.
func (m *ioMeter) stop() (n int64, ok bool, err error) {
	if m.pid <= 0 {
		return 0, false, nil
	}
	if m.err != nil {
		return 0, false, m.err
	}
	end, err := procWriteBytes(m.pid)
	if err != nil {
		return 0, false, err
	}
	return end - m.start, true, nil
}
