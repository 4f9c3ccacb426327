package docker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"

	"galaxy/rtmanager/internal/runtimes"
)

// Inspect reports whether the container runs (paused and restarting count
// as running: it has not ended) and, once it ended, its exit code and
// whether it was killed for lack of memory. A container that no longer
// exists has ended too, with no exit code.
func (d *Driver) Inspect(ctx context.Context, containerID string) (runtimes.State, error) {
	if containerID == "" {
		return runtimes.State{}, errors.New("docker inspect: empty container id")
	}
	s := d.cur.Load()
	if _, err := d.negotiate(ctx, s, false); err != nil {
		return runtimes.State{}, fmt.Errorf("docker inspect %s: %w", containerID, err)
	}
	res, err := s.cli.ContainerInspect(ctx, containerID, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return runtimes.State{Reason: "container " + shortID(containerID) + " no longer exists"}, nil
	}
	if err != nil {
		return runtimes.State{}, d.classifyOp(s, "inspect", containerID, err)
	}
	st := res.Container.State
	if st == nil {
		return runtimes.State{}, fmt.Errorf("docker inspect %s: the daemon gave no state", containerID)
	}
	if st.Running || st.Paused || st.Restarting {
		return runtimes.State{Running: true}, nil
	}
	code := int64(st.ExitCode)
	reason := fmt.Sprintf("container %s exited with code %d", shortID(containerID), code)
	if st.OOMKilled {
		reason += ", killed for lack of memory"
	}
	if st.Error != "" {
		reason += ": " + st.Error
	}
	return runtimes.State{ExitCode: &code, OOMKilled: st.OOMKilled, Reason: reason}, nil
}

// NotifyExits calls fn with the id of every container the daemon reports
// as ended (its "die" events), until ctx ends. The event stream is opened
// again after an error, and fn("", nil) then says that ends may have been
// missed meanwhile (the watch inspects all its containers). st is how the
// container ended, read from the event itself (its exitCode attribute and
// an "oom" event before it), so the watch needs no inspect; nil when the
// event does not say.
func (d *Driver) NotifyExits(ctx context.Context, fn func(containerID string, st *runtimes.State)) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			fn("", nil)
			t := time.NewTimer(min(time.Duration(attempt)*500*time.Millisecond, 5*time.Second))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		s := d.cur.Load()
		if _, err := d.negotiate(ctx, s, false); err != nil {
			continue
		}
		// Filtered here, not by the daemon: Podman's compatible API sends
		// nothing for an "event" filter.
		res := s.cli.Events(ctx, client.EventsListOptions{})
		oom := map[string]bool{} // containers with an "oom" event and no "die" yet
		for done := false; !done; {
			select {
			case m := <-res.Messages:
				attempt = 0
				if m.Type != events.ContainerEventType {
					continue
				}
				switch m.Action {
				case events.ActionOOM:
					if len(oom) < 4096 {
						oom[m.Actor.ID] = true
					}
				case events.ActionDie:
					fn(m.Actor.ID, dieState(m, oom[m.Actor.ID]))
					delete(oom, m.Actor.ID)
				}
			case err := <-res.Err:
				// The stream ended (io.EOF, the daemon went away, ctx): open
				// it again; fn("") then asks for a reconciliation.
				_ = err
				done = true
			}
		}
	}
}

// dieState reads how a container ended from its die event; nil when the
// event carries no exit code.
func dieState(m events.Message, oomKilled bool) *runtimes.State {
	code, err := strconv.ParseInt(m.Actor.Attributes["exitCode"], 10, 64)
	if err != nil {
		return nil
	}
	reason := fmt.Sprintf("container %s exited with code %d", shortID(m.Actor.ID), code)
	if oomKilled {
		reason += ", killed for lack of memory"
	}
	return &runtimes.State{ExitCode: &code, OOMKilled: oomKilled, Reason: reason}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
