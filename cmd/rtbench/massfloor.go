package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// massFloor measures what the machine itself needs for the mass stop: n
// fresh engines (the same as the mass stop's), each sent SIGTERM straight
// from rtbench through its pidfd, one after the other, with no rtmanager and
// no Redis; the time from the first signal until every engine has exited.
// On the 2-core VMs that is far above the delay: each engine's SIGTERM
// trap and exit cost CPU, and thousands of them wake at once.
func massFloor(ctx context.Context, kind engines, n int, delay, timeout time.Duration) (time.Duration, error) {
	pool, err := startEngines(ctx, kind, n, delay)
	if err != nil {
		return 0, fmt.Errorf("start %d engines: %w", n, err)
	}
	defer pool.close()
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return 0, fmt.Errorf("epoll: %w", err)
	}
	defer unix.Close(ep)
	fds := make([]int, 0, n)
	defer func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}()
	for _, pid := range pool.pids {
		fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
		if err != nil {
			return 0, fmt.Errorf("pidfd of engine %d: %w", pid, err)
		}
		fds = append(fds, fd)
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return 0, fmt.Errorf("epoll add: %w", err)
		}
	}
	began := time.Now()
	for i, fd := range fds {
		if err := unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0); err != nil {
			return 0, fmt.Errorf("SIGTERM to engine %d: %w", pool.pids[i], err)
		}
	}
	evs := make([]unix.EpollEvent, 256)
	for left := n; left > 0; {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		wait := time.Until(began.Add(timeout))
		if wait <= 0 {
			return 0, fmt.Errorf("%d of %d engines still running %s after the first SIGTERM", left, n, timeout)
		}
		k, err := unix.EpollWait(ep, evs, int(min(wait, time.Second).Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("epoll wait: %w", err)
		}
		for _, ev := range evs[:k] {
			// Level-triggered: an exited engine stays readable, so it is
			// taken out of the set once counted.
			if err := unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, int(ev.Fd), nil); err != nil {
				return 0, fmt.Errorf("epoll del: %w", err)
			}
			left--
		}
	}
	return time.Since(began), nil
}
