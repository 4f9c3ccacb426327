package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"galaxy/rtmanager/internal/stopruntime"
)

// exitPoller waits for the exits of many processes on one epoll instance
// of the driver's, itself in Go's netpoller, and one goroutine: a wait
// adds its pidfd (EPOLLONESHOT) and parks on a channel. That spares each
// wait what an *os.File in the netpoller costs (two fcntl calls, its own
// registration and removal, a deadline timer in the file's poller, a
// poll(2) before parking) and its allocations: in a mass stop, thousands
// of stops and as many watch waits.
type exitPoller struct {
	once sync.Once
	err  error // no epoll: waits fall back to polling /proc
	f    *os.File
	epfd int

	mu    sync.Mutex
	gen   uint32
	waits map[uint64]chan struct{} // by waitKey
}

// waitKey names one wait: the pidfd and a count, so an event still queued
// for a pidfd number that was closed and reused wakes nobody.
func waitKey(fd int32, gen uint32) uint64 { return uint64(uint32(fd))<<32 | uint64(gen) }

func (x *exitPoller) start() error {
	x.once.Do(func() {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			x.err = fmt.Errorf("epoll_create1: %w", err)
			return
		}
		if err := unix.SetNonblock(epfd, true); err != nil {
			_ = unix.Close(epfd)
			x.err = fmt.Errorf("epoll non-blocking: %w", err)
			return
		}
		f := os.NewFile(uintptr(epfd), "exit-poller")
		rc, err := f.SyscallConn()
		if err == nil {
			// A file the netpoller does not take has no deadlines.
			err = f.SetReadDeadline(time.Time{})
		}
		if err != nil {
			_ = f.Close()
			x.err = fmt.Errorf("epoll in the netpoller: %w", err)
			return
		}
		x.f, x.epfd, x.waits = f, epfd, map[uint64]chan struct{}{}
		go x.loop(rc)
	})
	return x.err
}

// loop wakes the waits whose processes exited, for the driver's life.
func (x *exitPoller) loop(rc syscall.RawConn) {
	evs := make([]unix.EpollEvent, 256)
	_ = rc.Read(func(uintptr) bool {
		// The netpoller reports the epoll readable once per change
		// (edge-triggered): drain it.
		for {
			n, err := unix.EpollWait(x.epfd, evs, 0)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil || n <= 0 {
				return false
			}
			x.mu.Lock()
			for _, ev := range evs[:n] {
				k := waitKey(ev.Fd, uint32(ev.Pad))
				if ch, ok := x.waits[k]; ok {
					close(ch)
					delete(x.waits, k)
				}
			}
			x.mu.Unlock()
			if n < len(evs) {
				return false
			}
		}
	})
}

// wait waits up to wait for p's process to exit: true when it has, false
// when the wait elapsed, a transient error when ctx ended or the pidfd
// could not be watched.
func (x *exitPoller) wait(ctx context.Context, p *pidfd, pid int, wait time.Duration) (bool, error) {
	ch := make(chan struct{})
	x.mu.Lock()
	x.gen++
	gen := x.gen
	k := waitKey(int32(p.fd), gen)
	x.waits[k] = ch
	x.mu.Unlock()
	op := unix.EPOLL_CTL_ADD
	if p.inPoller {
		op = unix.EPOLL_CTL_MOD // re-arm: a one-shot entry stays, disabled
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(p.fd), Pad: int32(gen)}
	if err := unix.EpollCtl(x.epfd, op, p.fd, &ev); err != nil {
		x.mu.Lock()
		delete(x.waits, k)
		x.mu.Unlock()
		return false, fmt.Errorf("wait for process %d: %w: epoll_ctl: %w", pid, stopruntime.ErrTransient, err)
	}
	p.inPoller = true
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ch:
		return true, nil
	case <-t.C:
	case <-ctx.Done():
	}
	x.mu.Lock()
	_, pending := x.waits[k]
	delete(x.waits, k)
	x.mu.Unlock()
	switch {
	case !pending:
		return true, nil // woken meanwhile
	case ctx.Err() != nil:
		return false, fmt.Errorf("wait for process %d: %w: %w", pid, stopruntime.ErrTransient, ctx.Err())
	default:
		return p.exited(), nil
	}
}
