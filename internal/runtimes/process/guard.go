package process

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"galaxy/rtmanager/internal/stopruntime"
)

// ErrRefused marks a stop the guard will not carry out: the target is
// rtmanager itself, its process group, its parent, pid 1, or a process of a
// uid that is not allowed. It is permanent (the job is answered
// failure/stop_failed with the reason): the record names a process that is
// not a game runtime, and no retry can change that.
var ErrRefused = errors.New("process runtime: refused")

// self is what the guard protects, read once at New.
type self struct {
	pid, ppid, pgid int
}

func whoAmI() self {
	s := self{pid: os.Getpid(), ppid: os.Getppid()}
	s.pgid, _ = syscall.Getpgid(0)
	return s
}

// check refuses to signal pid (or the group it leads) when that would hit
// rtmanager, its parent (whoever supervises it) or init, or a process whose
// uids are not allowed. Records come from Redis, which anyone
// with write access to it can fill: a record is not trusted to name a game.
// pgid and pgErr are getpgid(pid)'s answer; uids reads the process's uids.
func (d *Driver) check(pid, pgid int, pgErr error, uids func() ([]int, error)) error {
	refuse := func(why string) error {
		return fmt.Errorf("%w: not signalling process %d: %s", ErrRefused, pid, why)
	}
	switch pid {
	case d.self.pid:
		return refuse("it is rtmanager itself")
	case 1:
		return refuse("it is init (pid 1)")
	case d.self.ppid:
		return refuse("it is rtmanager's parent")
	}
	if pgErr == nil && d.self.pgid > 0 && pgid == d.self.pgid {
		// Signalling the group would hit rtmanager; a member of our group was
		// started with us, not as a game runtime (runtimes lead their own group).
		return refuse("it is in rtmanager's own process group")
	}
	if d.opts.AnyUID {
		return nil
	}
	ids, err := uids()
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return nil // gone meanwhile: the signal sees it and answers ErrGone
		}
		return fmt.Errorf("check uid of process %d: %w: %w", pid, stopruntime.ErrTransient, err)
	}
	for _, u := range ids {
		if !slices.Contains(d.opts.AllowUIDs, u) {
			return refuse(fmt.Sprintf("it runs as uid %d, not one of the allowed uids %v (--process-allow-uids)", u, d.opts.AllowUIDs))
		}
	}
	return nil
}

// uidsOf reads the uids through the pidfd where the kernel can (no /proc
// read), else from /proc.
func (d *Driver) uidsOf(p *pidfd, pid int) ([]int, error) {
	if !d.noPidfdInfo.Load() {
		ids, err := p.uids()
		if !errors.Is(err, errNoPidfdInfo) {
			return ids, err
		}
		d.noPidfdInfo.Store(true)
	}
	return d.uids(pid)
}

// uids reads the real, effective, saved and filesystem uids of a process
// (the "Uid:" line of /proc/<pid>/status).
func (d *Driver) uids(pid int) ([]int, error) {
	if d.procRead != nil {
		d.procRead("status")
	}
	b, err := os.ReadFile(d.opts.ProcDir + "/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	return parseUIDs(b)
}

func parseUIDs(status []byte) ([]int, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Uid:")
		if !ok {
			continue
		}
		var out []int
		for _, f := range strings.Fields(rest) {
			u, err := strconv.Atoi(f)
			if err != nil {
				return nil, fmt.Errorf("parse /proc status: uid %q", f)
			}
			out = append(out, u)
		}
		if len(out) == 0 {
			break
		}
		return out, nil
	}
	return nil, errors.New("parse /proc status: no Uid line")
}
