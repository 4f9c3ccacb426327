package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/deadletters"
)

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
	d, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	dq, err := deadQueuesOf(d)
	if err != nil {
		return err
	}
	type cmds struct {
		msgs *redis.XMessageSliceCmd
		n    *redis.IntCmd
	}
	all := perKey(ctx, d.c, len(dq), func(p redis.Pipeliner, i int) cmds {
		return cmds{p.XRangeN(ctx, dq[i].dead, "-", "+", *count), p.XLen(ctx, dq[i].dead)}
	})
	var total int64
	var es []shardEntry
	for i, cs := range all {
		msgs, err := cs.msgs.Result()
		if err != nil {
			return fmt.Errorf("read %s: %w", dq[i].dead, err)
		}
		n, err := cs.n.Result()
		if err != nil {
			return fmt.Errorf("count %s: %w", dq[i].dead, err)
		}
		total += n
		for _, m := range msgs {
			es = append(es, shardEntry{dq[i].shard, m})
		}
	}
	// The oldest count letters of all shards.
	sortEntries(es)
	es = es[:min(int64(len(es)), *count)]
	views := make([]deadView, 0, len(es))
	for _, e := range es {
		v := toDeadView(e.msg)
		v.Shard = d.shardOf(e.shard)
		views = append(views, v)
	}
	if a.g.json {
		return writeJSON(a.stdout, views)
	}
	return printDead(a.stdout, views, total, d.layout.Sharded)
}

// deadQueue is one shard's dead-letter stream and the job stream its
// letters are replayed to: the job stream of the same shard
// (api.Layout.ShardOfKey), so a replayed job stays in its slot.
type deadQueue struct {
	shard      int
	dead, jobs string
}

// deadQueuesOf are the stop-job dead-letter streams of every shard, shard
// 0 first.
func deadQueuesOf(d *deployment) ([]deadQueue, error) {
	deadCh, err := d.channel(deadKey)
	if err != nil {
		return nil, err
	}
	jobsCh, err := d.channel(jobsKey)
	if err != nil {
		return nil, err
	}
	keys := d.layout.Keys(deadCh)
	out := make([]deadQueue, 0, len(keys))
	for _, k := range keys {
		n, err := d.layout.ShardOfKey(deadCh, k)
		if err != nil {
			return nil, fmt.Errorf("dead-letter stream %s: %w", k, err)
		}
		out = append(out, deadQueue{shard: n, dead: k, jobs: d.layout.Key(jobsCh, n)})
	}
	return out, nil
}

// deadRef names one dead letter: its shard's queue and its entry id.
type deadRef struct {
	q  deadQueue
	id string
}

var shardIDPattern = regexp.MustCompile(`^([0-9]+)/([0-9]+-[0-9]+)$`)

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
		if !entryIDPattern.MatchString(id) && !shardIDPattern.MatchString(id) {
			return usagef("dead replay: %q is not a stream entry id (like 1764160000000-0), or with --shards SHARD/ID (like 3/1764160000000-0)", id)
		}
	}
	d, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	dq, err := deadQueuesOf(d)
	if err != nil {
		return err
	}
	var refs []deadRef
	if *all {
		// A snapshot of the ids: a replayed job that is dead-lettered again
		// meanwhile is not replayed twice by this run.
		if refs, err = allDeadRefs(ctx, d.c, dq); err != nil {
			return err
		}
	} else if refs, err = resolveDeadRefs(ctx, d, dq, ids); err != nil {
		return err
	}
	done := make([]replayView, 0, len(refs))
	var rerr error
	for _, r := range refs {
		// The dead stream and the job stream are of one shard: one Cluster
		// slot, so Replay's MULTI/EXEC runs there.
		rp, err := deadletters.Replay(ctx, d.c, deadletters.Pair{Dead: r.q.dead, Jobs: r.q.jobs}, r.id)
		if *all && errors.Is(err, deadletters.ErrGone) {
			continue // replayed by someone else since the snapshot
		}
		if *all && errors.Is(err, deadletters.ErrTruncated) {
			// Left on the dead stream; the others are still replayed, and
			// the command fails at the end.
			rerr = errors.Join(rerr, err)
			continue
		}
		if err != nil {
			rerr = errors.Join(rerr, err)
			break
		}
		done = append(done, replayView{DeadID: rp.DeadID, Shard: d.shardOf(r.q.shard), OriginalID: rp.OriginalID, JobID: rp.JobID})
	}
	var perr error
	if a.g.json {
		perr = writeJSON(a.stdout, done)
	} else {
		perr = printReplays(a.stdout, done, d.layout.Sharded)
	}
	return errors.Join(rerr, perr)
}

// resolveDeadRefs finds the shard of each id. Not sharded, there is one
// dead stream. Sharded, SHARD/ID names it; a bare ID is looked up on every
// shard's dead stream (ids are unique per stream only): found on one, it is
// that one; on none, it is gone (already replayed?); on several, the
// operator must say which.
func resolveDeadRefs(ctx context.Context, d *deployment, dq []deadQueue, ids []string) ([]deadRef, error) {
	refs := make([]deadRef, 0, len(ids))
	for _, id := range ids {
		if m := shardIDPattern.FindStringSubmatch(id); m != nil {
			n, err := strconv.Atoi(m[1])
			if !d.layout.Sharded || err != nil || n >= len(dq) {
				return nil, usagef("dead replay: %q: no shard %s in this layout (%d shard(s)%s)", id, m[1], len(dq), notSharded(d))
			}
			refs = append(refs, deadRef{dq[n], m[2]})
			continue
		}
		if len(dq) == 1 {
			refs = append(refs, deadRef{dq[0], id})
			continue
		}
		cmds := perKey(ctx, d.c, len(dq), func(p redis.Pipeliner, i int) *redis.XMessageSliceCmd {
			return p.XRangeN(ctx, dq[i].dead, id, id, 1)
		})
		var on []int
		for i, cmd := range cmds {
			msgs, err := cmd.Result()
			if err != nil {
				return nil, fmt.Errorf("look up dead letter %s on %s: %w", id, dq[i].dead, err)
			}
			if len(msgs) > 0 {
				on = append(on, i)
			}
		}
		switch len(on) {
		case 0:
			return nil, fmt.Errorf("replay dead letter %s: %w: on none of the %d shards", id, deadletters.ErrGone, len(dq))
		case 1:
			refs = append(refs, deadRef{dq[on[0]], id})
		default:
			return nil, usagef("dead replay: %s is on the dead streams of shards %s: name one as SHARD/%s", id, joinInts(on), id)
		}
	}
	return refs, nil
}

func notSharded(d *deployment) string {
	if d.layout.Sharded {
		return ""
	}
	return ", not sharded"
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// allDeadRefs is every dead letter of every shard, oldest first by id. The
// first page of every shard is read in pipelines; only a shard with more
// goes on page by page.
func allDeadRefs(ctx context.Context, c redis.UniversalClient, dq []deadQueue) ([]deadRef, error) {
	first := perKey(ctx, c, len(dq), func(p redis.Pipeliner, i int) *redis.XMessageSliceCmd {
		return p.XRangeN(ctx, dq[i].dead, "-", "+", idPage)
	})
	var es []shardEntry
	for i, cmd := range first {
		msgs, err := cmd.Result()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", dq[i].dead, err)
		}
		if len(msgs) == idPage {
			if msgs, err = allAfter(ctx, c, dq[i].dead, msgs); err != nil {
				return nil, err
			}
		}
		for _, m := range msgs {
			es = append(es, shardEntry{i, redis.XMessage{ID: m.ID}})
		}
	}
	sortEntries(es)
	refs := make([]deadRef, len(es))
	for i, e := range es {
		refs[i] = deadRef{dq[e.shard], e.msg.ID}
	}
	return refs, nil
}

// idPage is how many entries one XRANGE of allDeadRefs reads.
const idPage = 500

// allAfter appends to msgs, a full first page of stream, the rest of it.
func allAfter(ctx context.Context, c redis.UniversalClient, stream string, msgs []redis.XMessage) ([]redis.XMessage, error) {
	for {
		page, err := c.XRangeN(ctx, stream, "("+msgs[len(msgs)-1].ID, "+", idPage).Result()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		msgs = append(msgs, page...)
		if len(page) < idPage {
			return msgs, nil
		}
	}
}
