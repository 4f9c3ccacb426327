package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
)

// Stream keys (the contract's channel addresses) and the default group.
const (
	jobsKey      = runtimejobs.StopJobsChannelPath
	resultsKey   = runtimejobs.JobResultsChannelPath
	deadKey      = runtimejobs.StopJobsDeadChannelPath
	defaultGroup = "rtmanager" // x-redis-stream.group of stopJobs
	// pollBlock bounds one blocking XREAD, so a cancelled context (SIGINT)
	// is noticed within it.
	pollBlock = time.Second
)

// deadFields are the fields a dead letter adds to the original entry; an
// original field with one of these names is kept as "original.<name>".
var deadFields = map[string]bool{
	"dead_reason": true, "dead_error": true, "original_id": true, "delivery_count": true, "dead_at_ms": true,
}

var entryIDPattern = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

func wantArgs(cmd string, pos []string, n int, what string) error {
	if len(pos) != n {
		return usagef("%s: want %s, got %d argument(s)", cmd, what, len(pos))
	}
	return nil
}

// --- send-stop ---

func cmdSendStop(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("send-stop", flag.ContinueOnError)
	reason := fs.String("reason", "", "why: game_finished, lobby_cancelled, admin_request, idle_timeout or platform_shutdown")
	reqAt := fs.String("requested-at-ms", "", "requested_at_ms, Unix milliseconds (field omitted when not given)")
	raw := fs.Bool("raw", false, "write GAME, --reason and --requested-at-ms verbatim, unchecked (to reproduce a bad job)")
	wait := fs.Bool("wait", false, "wait for the job's result on "+resultsKey+" and print it")
	waitTimeout := fs.Duration("wait-timeout", 30*time.Second, "how long --wait waits before exit code 1")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("send-stop", pos, 1, "one GAME"); err != nil {
		return err
	}
	set := visited(fs)
	game := pos[0]
	if !*raw {
		game = strings.TrimSpace(game)
		if err := stopruntime.ValidateGameID(game); err != nil {
			return usagef("send-stop: %v", err)
		}
		if !stopruntime.KnownReason(*reason) {
			return usagef("send-stop: --reason %q: must be one of game_finished, lobby_cancelled, admin_request, idle_timeout, platform_shutdown", *reason)
		}
		if set["requested-at-ms"] {
			if n, err := strconv.ParseInt(*reqAt, 10, 64); err != nil || n < 0 {
				return usagef("send-stop: --requested-at-ms %q: must be a non-negative integer", *reqAt)
			}
		}
	}
	if *wait && *waitTimeout <= 0 {
		return usagef("send-stop: --wait-timeout: must be positive")
	}
	values := []any{"game_id", game}
	if !*raw || set["reason"] {
		values = append(values, "reason", *reason)
	}
	if set["requested-at-ms"] {
		values = append(values, "requested_at_ms", *reqAt)
	}

	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	after := ""
	if *wait {
		// Remember where the results stream ends before the job exists, so
		// its result cannot be missed.
		if after, err = lastID(ctx, c, resultsKey); err != nil {
			return err
		}
	}
	id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: jobsKey, Values: values}).Result()
	if err != nil {
		return fmt.Errorf("append stop job to %s: %w", jobsKey, err)
	}
	if !*wait {
		if a.g.json {
			return writeJSON(a.stdout, sendView{JobID: id})
		}
		_, err := fmt.Fprintln(a.stdout, id)
		return err
	}
	if !a.g.json {
		fmt.Fprintf(a.stdout, "job %s sent; waiting up to %s for its result\n", id, *waitTimeout)
	}
	res, werr := waitResult(ctx, c, after, id, *waitTimeout)
	if a.g.json {
		if err := writeJSON(a.stdout, sendView{JobID: id, Result: res}); err != nil {
			return err
		}
	} else if res != nil {
		if err := printResults(a.stdout, []resultView{*res}, true); err != nil {
			return err
		}
	}
	return werr
}

// waitResult reads resultsKey after id `after` until the result of jobID
// arrives, the timeout passes or ctx ends.
func waitResult(ctx context.Context, c *redis.Client, after, jobID string, timeout time.Duration) (*resultView, error) {
	deadline := time.Now().Add(timeout)
	for {
		remaining := time.Until(deadline)
		if remaining < time.Millisecond {
			return nil, fmt.Errorf("no result for job %s on %s within %s", jobID, resultsKey, timeout)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("wait for the result of job %s: %w", jobID, ctx.Err())
		}
		msgs, err := readAfter(ctx, c, resultsKey, after, min(remaining, pollBlock))
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("wait for the result of job %s: %w", jobID, ctx.Err())
			}
			return nil, fmt.Errorf("wait for the result of job %s: %w", jobID, err)
		}
		for _, m := range msgs {
			after = m.ID
			if str(m.Values, "job_id") == jobID {
				v := toResultView(m)
				return &v, nil
			}
		}
	}
}

// readAfter is one XREAD BLOCK of stream after id; no entries is not an error.
func readAfter(ctx context.Context, c *redis.Client, stream, after string, block time.Duration) ([]redis.XMessage, error) {
	res, err := c.XRead(ctx, &redis.XReadArgs{Streams: []string{stream, after}, Count: 100, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	var out []redis.XMessage
	for _, s := range res {
		out = append(out, s.Messages...)
	}
	return out, nil
}

// lastID is the id of the newest entry of stream, or "0-0" when it is empty.
func lastID(ctx context.Context, c *redis.Client, stream string) (string, error) {
	msgs, err := c.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("read the last entry of %s: %w", stream, err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

// --- results ---

func cmdResults(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("results", flag.ContinueOnError)
	count := fs.Int64("count", 20, "how many of the latest results to print")
	follow := fs.Bool("follow", false, "keep printing new results until interrupted (Ctrl-C)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("results", pos, 0, "no arguments"); err != nil {
		return err
	}
	if *count < 0 || (*count == 0 && !*follow) {
		return usagef("results: --count: must be positive")
	}
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	after := "0-0"
	var views []resultView
	if *count > 0 {
		msgs, err := c.XRevRangeN(ctx, resultsKey, "+", "-", *count).Result()
		if err != nil {
			return fmt.Errorf("read %s: %w", resultsKey, err)
		}
		for i := len(msgs) - 1; i >= 0; i-- {
			views = append(views, toResultView(msgs[i]))
		}
	}
	if len(views) > 0 {
		after = views[len(views)-1].ID
	} else if *follow {
		if after, err = lastID(ctx, c, resultsKey); err != nil {
			return err
		}
	}
	if err := a.printResultBatch(views, true); err != nil {
		return err
	}
	if !*follow {
		return nil
	}
	for {
		msgs, err := readAfter(ctx, c, resultsKey, after, pollBlock)
		if ctx.Err() != nil {
			return nil // interrupted: the normal end of --follow
		}
		if err != nil {
			return err
		}
		views = views[:0]
		for _, m := range msgs {
			views = append(views, toResultView(m))
			after = m.ID
		}
		if err := a.printResultBatch(views, false); err != nil {
			return err
		}
	}
}

func (a *app) printResultBatch(views []resultView, header bool) error {
	if a.g.json {
		for _, v := range views {
			if err := writeJSONLine(a.stdout, v); err != nil {
				return err
			}
		}
		return nil
	}
	if len(views) == 0 && !header {
		return nil
	}
	return printResults(a.stdout, views, header)
}

// --- register and status ---

func newService(c *redis.Client) (*stopruntime.Service, error) {
	svc, err := stopruntime.New(runtimestore.New(c, runtimestore.Options{}), nil,
		stopruntime.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("build runtime service: %w", err)
	}
	return svc, nil
}

func cmdRegister(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("register", flag.ContinueOnError)
	container := fs.String("container", "", "container id (docker), or process id pid:<pid>:start:<ticks>; optional with --pid")
	endpoint := fs.String("endpoint", "", "the game engine's HOST:PORT")
	runtimeName := fs.String("runtime", "", "docker, process or none")
	pid := fs.Int("pid", 0, "process runtime: compute the container id of this live process")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("register", pos, 1, "one GAME"); err != nil {
		return err
	}
	game := strings.TrimSpace(pos[0])
	if err := stopruntime.ValidateGameID(game); err != nil {
		return usagef("register: %v", err)
	}
	switch *runtimeName {
	case stopruntime.RuntimeDocker, stopruntime.RuntimeProcess, stopruntime.RuntimeNone:
	case "":
		return usagef("register: --runtime is required (docker, process or none)")
	default:
		return usagef("register: --runtime %q: must be docker, process or none", *runtimeName)
	}
	if err := checkEndpoint(*endpoint); err != nil {
		return usagef("register: --endpoint %q: %v", *endpoint, err)
	}
	id := *container
	if visited(fs)["pid"] {
		if *runtimeName != stopruntime.RuntimeProcess {
			return usagef("register: --pid needs --runtime process")
		}
		if *pid <= 0 {
			return usagef("register: --pid %d: must be positive", *pid)
		}
		pidID, err := process.IDForPID(*pid)
		if err != nil {
			return fmt.Errorf("register: %w", err)
		}
		if id != "" && id != pidID {
			return usagef("register: --container %q is not the id of --pid %d (%s)", id, *pid, pidID)
		}
		id = pidID
	}
	if *runtimeName == stopruntime.RuntimeProcess && id != "" {
		if _, _, err := process.ParseID(id); err != nil {
			return usagef("register: --container %q: %v", id, err)
		}
	}
	if id == "" && *runtimeName != stopruntime.RuntimeNone {
		return usagef("register: --container (or, for process, --pid) is required for runtime %s", *runtimeName)
	}

	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	svc, err := newService(c)
	if err != nil {
		return err
	}
	rec, err := svc.Register(ctx, stopruntime.Record{
		GameID: game, ContainerID: id, EngineEndpoint: *endpoint, Runtime: *runtimeName,
	})
	if err != nil {
		if errors.Is(err, stopruntime.ErrBusy) {
			return fmt.Errorf("%w; try again when the stop has finished", err)
		}
		return err
	}
	return a.printRecord(rec)
}

func checkEndpoint(ep string) error {
	if ep == "" {
		return errors.New("required")
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return errors.New("must be HOST:PORT")
	}
	if host == "" {
		return errors.New("empty host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("port must be 1-65535")
	}
	return nil
}

func cmdStatus(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("status", pos, 1, "one GAME"); err != nil {
		return err
	}
	game := strings.TrimSpace(pos[0])
	if err := stopruntime.ValidateGameID(game); err != nil {
		return usagef("status: %v", err)
	}
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	svc, err := newService(c)
	if err != nil {
		return err
	}
	rec, ok, err := svc.Get(ctx, game)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no runtime record for game %s (register one with '%s register')", game, prog)
	}
	return a.printRecord(rec)
}

// --- pending ---

func cmdPending(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("pending", flag.ContinueOnError)
	group := fs.String("group", defaultGroup, "consumer group of "+jobsKey)
	count := fs.Int64("count", 10, "how many of the oldest pending entries to list")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("pending", pos, 0, "no arguments"); err != nil {
		return err
	}
	if *group == "" {
		return usagef("pending: --group: must not be empty")
	}
	if *count < 0 {
		return usagef("pending: --count: must not be negative")
	}
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	exists, err := c.Exists(ctx, jobsKey).Result()
	if err != nil {
		return fmt.Errorf("look up %s: %w", jobsKey, err)
	}
	if exists == 0 {
		return fmt.Errorf("stream %s does not exist: no job was sent and rtmanager never started", jobsKey)
	}
	groups, err := c.XInfoGroups(ctx, jobsKey).Result()
	if err != nil {
		return fmt.Errorf("read the groups of %s: %w", jobsKey, err)
	}
	v := pendingView{Stream: jobsKey, Group: *group, Consumers: []consumerView{}, Oldest: []pendingEntryView{}}
	found := false
	for _, g := range groups {
		if g.Name == *group {
			found = true
			v.GroupConsumers, v.LastDeliveredID, v.EntriesRead, v.Lag = g.Consumers, g.LastDeliveredID, g.EntriesRead, g.Lag
		}
	}
	if !found {
		return fmt.Errorf("stream %s has no consumer group %q (rtmanager creates it when it starts)", jobsKey, *group)
	}
	sum, err := c.XPending(ctx, jobsKey, *group).Result()
	if err != nil {
		return fmt.Errorf("read the pending summary of group %s: %w", *group, err)
	}
	v.Pending, v.Lowest, v.Highest = sum.Count, sum.Lower, sum.Higher
	for name, n := range sum.Consumers {
		v.Consumers = append(v.Consumers, consumerView{Name: name, Pending: n})
	}
	sort.Slice(v.Consumers, func(i, j int) bool { return v.Consumers[i].Name < v.Consumers[j].Name })
	if *count > 0 && sum.Count > 0 {
		ents, err := c.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: jobsKey, Group: *group, Start: "-", End: "+", Count: *count,
		}).Result()
		if err != nil {
			return fmt.Errorf("read the pending entries of group %s: %w", *group, err)
		}
		for _, e := range ents {
			v.Oldest = append(v.Oldest, pendingEntryView{
				ID: e.ID, Consumer: e.Consumer, IdleMS: e.Idle.Milliseconds(), Deliveries: e.RetryCount,
			})
		}
	}
	if a.g.json {
		return writeJSON(a.stdout, v)
	}
	return printPending(a.stdout, v)
}

// --- dead ---

func cmdDead(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return usagef("dead: want a subcommand: list or replay")
	}
	switch args[0] {
	case "list":
		return cmdDeadList(ctx, a, args[1:])
	case "replay":
		return cmdDeadReplay(ctx, a, args[1:])
	case "-h", "-help", "--help":
		fs := flag.NewFlagSet("dead", flag.ContinueOnError)
		_, err := a.parse(fs, args)
		return err
	default:
		return usagef("dead: unknown subcommand %q: want list or replay", args[0])
	}
}

func cmdDeadList(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("dead list", flag.ContinueOnError)
	count := fs.Int64("count", 100, "how many dead letters to list, oldest first")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("dead list", pos, 0, "no arguments"); err != nil {
		return err
	}
	if *count <= 0 {
		return usagef("dead list: --count: must be positive")
	}
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	msgs, err := c.XRangeN(ctx, deadKey, "-", "+", *count).Result()
	if err != nil {
		return fmt.Errorf("read %s: %w", deadKey, err)
	}
	total, err := c.XLen(ctx, deadKey).Result()
	if err != nil {
		return fmt.Errorf("count %s: %w", deadKey, err)
	}
	views := make([]deadView, 0, len(msgs))
	for _, m := range msgs {
		views = append(views, toDeadView(m))
	}
	if a.g.json {
		return writeJSON(a.stdout, views)
	}
	return printDead(a.stdout, views, total)
}

func cmdDeadReplay(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("dead replay", flag.ContinueOnError)
	all := fs.Bool("all", false, "replay every dead letter present when the command starts")
	ids, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if *all == (len(ids) > 0) {
		return usagef("dead replay: give dead-letter IDs or --all (not both)")
	}
	for _, id := range ids {
		if !entryIDPattern.MatchString(id) {
			return usagef("dead replay: %q is not a stream entry id (like 1764160000000-0)", id)
		}
	}
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if *all {
		// A snapshot of the ids: a replayed job that is dead-lettered again
		// meanwhile is not replayed twice by this run.
		if ids, err = allIDs(ctx, c, deadKey); err != nil {
			return err
		}
	}
	done := make([]replayView, 0, len(ids))
	var rerr error
	for _, id := range ids {
		v, err := replayOne(ctx, c, id)
		if *all && errors.Is(err, errDeadGone) {
			continue // replayed by someone else since the snapshot
		}
		if *all && errors.Is(err, errDeadTruncated) {
			// Left on the dead stream; the others are still replayed, and
			// the command fails at the end.
			rerr = errors.Join(rerr, err)
			continue
		}
		if err != nil {
			rerr = errors.Join(rerr, err)
			break
		}
		done = append(done, v)
	}
	var perr error
	if a.g.json {
		perr = writeJSON(a.stdout, done)
	} else {
		perr = printReplays(a.stdout, done)
	}
	return errors.Join(rerr, perr)
}

func allIDs(ctx context.Context, c *redis.Client, stream string) ([]string, error) {
	var ids []string
	start := "-"
	for {
		msgs, err := c.XRangeN(ctx, stream, start, "+", 500).Result()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		if len(msgs) < 500 {
			return ids, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// replayOne moves one dead letter back to the job stream: the XADD of its
// original fields and the XDEL of the dead letter run in one MULTI/EXEC,
// under WATCH of the dead stream, so a replay is never lost or doubled (two
// operators replaying the same letter: one wins, the other finds it gone).
func replayOne(ctx context.Context, c *redis.Client, deadID string) (replayView, error) {
	const attempts = 20
	for i := 0; i < attempts; i++ {
		var v replayView
		err := c.Watch(ctx, func(tx *redis.Tx) error {
			msgs, err := tx.XRangeN(ctx, deadKey, deadID, deadID, 1).Result()
			if err != nil {
				return fmt.Errorf("read dead letter %s: %w", deadID, err)
			}
			if len(msgs) == 0 {
				return errDeadGone
			}
			if cut, ok := msgs[0].Values["dead_truncated"].(string); ok {
				// The broker cut this copy to its bounds: replaying it would
				// send a job that is not the one Lobby wrote.
				return fmt.Errorf("%w (dead_truncated: %s); not replayed", errDeadTruncated, cut)
			}
			fields := originalFields(msgs[0].Values)
			if len(fields) == 0 {
				return fmt.Errorf("dead letter %s has no original fields to replay", deadID)
			}
			var add *redis.StringCmd
			if _, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				add = p.XAdd(ctx, &redis.XAddArgs{Stream: jobsKey, Values: flatten(fields)})
				p.XDel(ctx, deadKey, deadID)
				return nil
			}); err != nil {
				return err
			}
			v = replayView{DeadID: deadID, OriginalID: str(msgs[0].Values, "original_id"), JobID: add.Val()}
			return nil
		}, deadKey)
		if errors.Is(err, redis.TxFailedErr) {
			continue // the dead stream changed under WATCH; read again
		}
		if err != nil {
			return replayView{}, fmt.Errorf("replay dead letter %s: %w", deadID, err)
		}
		return v, nil
	}
	return replayView{}, fmt.Errorf("replay dead letter %s: the dead stream kept changing; try again", deadID)
}

// errDeadTruncated says a dead letter was cut to the broker's bounds.
var errDeadTruncated = errors.New("the dead letter does not carry its job whole")

// errDeadGone says a dead letter is not (or no longer) on the dead stream.
var errDeadGone = fmt.Errorf("not on %s (already replayed?)", deadKey)

type field struct{ name, value string }

// originalFields restores a dead letter's original entry: the dead-letter
// fields dropped, "original.<name>" renamed back to <name>; the contract's
// fields first, the rest sorted by name.
func originalFields(values map[string]any) []field {
	var out []field
	for name, v := range values {
		if deadFields[name] {
			continue
		}
		if base, ok := strings.CutPrefix(name, "original."); ok && deadFields[base] {
			name = base
		}
		s, _ := v.(string)
		out = append(out, field{name, s})
	}
	rank := func(n string) int {
		switch n {
		case "game_id":
			return 0
		case "reason":
			return 1
		case "requested_at_ms":
			return 2
		}
		return 3
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := rank(out[i].name), rank(out[j].name)
		if ri != rj {
			return ri < rj
		}
		return out[i].name < out[j].name
	})
	return out
}

func flatten(fields []field) []any {
	out := make([]any, 0, 2*len(fields))
	for _, f := range fields {
		out = append(out, f.name, f.value)
	}
	return out
}

// --- helpers ---

func visited(fs *flag.FlagSet) map[string]bool {
	m := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { m[f.Name] = true })
	return m
}

func str(values map[string]any, name string) string {
	s, _ := values[name].(string)
	return s
}

func toInt(values map[string]any, name string) int64 {
	n, _ := strconv.ParseInt(str(values, name), 10, 64)
	return n
}
