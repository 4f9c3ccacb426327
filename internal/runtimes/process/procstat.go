package process

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// readStat reads /proc/<pid>/stat with bare system calls. A mass stop reads
// it a few times per process; os.ReadFile's *os.File, its size probe and
// its buffers cost more than the read itself. The line fits the buffer:
// its variable parts are bounded (the command name by 16 bytes, the rest
// are numbers).
func readStat(procDir string, pid int) (procStat, error) {
	path := procDir + "/" + strconv.Itoa(pid) + "/stat"
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return procStat{}, &statError{path: path, err: err}
	}
	defer unix.Close(fd)
	var buf [1024]byte
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return procStat{}, &statError{path: path, err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	return parseStat(buf[:n])
}

// statError names the file; it unwraps to the errno, so errors.Is(err,
// fs.ErrNotExist) holds for a process that is gone.
type statError struct {
	path string
	err  error
}

func (e *statError) Error() string { return "read " + e.path + ": " + e.err.Error() }
func (e *statError) Unwrap() error { return e.err }
