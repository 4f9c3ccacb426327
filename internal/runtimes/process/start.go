package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"galaxy/rtmanager/internal/runtimes"
)

// Labels put in a started engine's environment: they find the process of a
// start again after a crash (Find) and let operators and tests count the
// runtimes of a game.
const (
	LabelGameID = "RTMANAGER_GAME_ID"
	LabelJobID  = "RTMANAGER_START_JOB"
)

// PortPlaceholder in a command is replaced by the chosen port.
const PortPlaceholder = "{port}"

// StartSpec is what to start: an engine profile's command for one game.
type StartSpec struct {
	GameID, JobID string
	// Command is the profile's argv with PortPlaceholder where the port goes.
	Command []string
	// Env is the profile's environment; PORT and the labels are added.
	Env map[string]string
}

// passEnv are the variables of rtmanager's own environment an engine gets;
// nothing else is passed (rtmanager's may hold a Redis password).
var passEnv = []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"}

// Start spawns the command in a process group of its own (Setpgid, so Stop
// can signal the group) on a free loopback port, and returns its container
// id and endpoint 127.0.0.1:<port>. It does not wait for the engine to
// listen. A process the guard would refuse to stop is never started.
func (d *Driver) Start(ctx context.Context, spec StartSpec) (containerID, endpoint string, err error) {
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return "", "", errors.New("start process: empty command")
	}
	if !d.opts.AnyUID && !slices.Contains(d.opts.AllowUIDs, os.Getuid()) {
		return "", "", fmt.Errorf("%w: start process: it would run as uid %d, which the process runtime may not stop (--process-allow-uids)", ErrRefused, os.Getuid())
	}
	port, err := runtimes.FreePort()
	if err != nil {
		return "", "", fmt.Errorf("start process: choose a port: %w", err)
	}
	ps := strconv.Itoa(port)
	argv := make([]string, len(spec.Command))
	for i, a := range spec.Command {
		argv[i] = strings.ReplaceAll(a, PortPlaceholder, ps)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = engineEnv(spec, ps)
	cmd.Dir = os.TempDir()
	if err := cmd.Start(); err != nil {
		return "", "", fmt.Errorf("start process %q: %w", argv[0], err)
	}
	pid := cmd.Process.Pid
	// Its id (start time) is readable until it is reaped, even if it has
	// exited already.
	id, err := d.IDForPID(pid)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return "", "", fmt.Errorf("start process %q: %w", argv[0], err)
	}
	// Reap it when it exits, so it does not linger as a zombie, and keep
	// how it ended for the runtime watch; a crashed rtmanager's children
	// are reaped by init instead.
	d.exits.started(id)
	go func() {
		_ = cmd.Wait()
		d.exits.ended(id, cmd.ProcessState)
	}()
	return id, "127.0.0.1:" + ps, nil
}

func engineEnv(spec StartSpec, port string) []string {
	var env []string
	for _, k := range passEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	return append(env, "PORT="+port, LabelGameID+"="+spec.GameID, LabelJobID+"="+spec.JobID)
}

// Found is a live process started for a game.
type Found struct {
	ContainerID string
	JobID       string
	Endpoint    string // 127.0.0.1:<PORT>, from its environment
}

// Find lists the live processes whose environment labels them with gameID
// (and jobID, when not empty), leaders of their own process group as Start
// makes them. Processes whose environment cannot be read (other users') are
// skipped.
func (d *Driver) Find(gameID, jobID string) ([]Found, error) {
	ents, err := os.ReadDir(d.opts.ProcDir)
	if err != nil {
		return nil, fmt.Errorf("find processes of game %s: %w", gameID, err)
	}
	var out []Found
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 {
			continue
		}
		env, err := readEnviron(filepath.Join(d.opts.ProcDir, e.Name()))
		if err != nil {
			continue
		}
		vars := parseEnviron(env)
		if vars[LabelGameID] != gameID || (jobID != "" && vars[LabelJobID] != jobID) {
			continue
		}
		if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
			continue
		}
		id, err := d.IDForPID(pid)
		if err != nil {
			continue
		}
		out = append(out, Found{ContainerID: id, JobID: vars[LabelJobID], Endpoint: "127.0.0.1:" + vars["PORT"]})
	}
	return out, nil
}

// readEnviron reads a process's environment. A process in the middle of an
// execve(2) (an engine whose command is a shell or a shim that execs the
// real engine) shows an empty one for an instant, so an empty read is tried
// again a few times, unless the process has no executable (a kernel thread
// or a zombie, which never have one).
func readEnviron(procPidDir string) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		env, err := os.ReadFile(filepath.Join(procPidDir, "environ"))
		if err != nil || len(env) > 0 || attempt == 5 {
			return env, err
		}
		if _, err := os.Readlink(filepath.Join(procPidDir, "exe")); err != nil {
			return env, nil
		}
		time.Sleep(time.Millisecond)
	}
}

func parseEnviron(b []byte) map[string]string {
	out := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if ok {
			out[k] = v
		}
	}
	return out
}
