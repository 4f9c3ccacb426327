// Package deadletters puts dead-lettered jobs back on their job stream. It
// is the one replay path of rtmanager: rtmanagerctl's `dead replay` and the
// operator console both call Replay.
package deadletters

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/redisstream"
)

// ErrTruncated says a dead letter was cut to the broker's bounds: replaying
// it would send a job that is not the one Lobby wrote, so it stays.
var ErrTruncated = errors.New("the dead letter does not carry its job whole")

// ErrGone says a dead letter is not (or no longer) on the dead stream.
var ErrGone = errors.New("not on the dead stream (already replayed?)")

// Pair names a dead-letter stream and the job stream its letters go back to.
type Pair struct {
	Dead string
	Jobs string
}

// Replayed is one dead letter put back and the id of its new job entry.
type Replayed struct {
	DeadID     string
	OriginalID string
	JobID      string
}

// maxAttempts bounds the WATCH retries of one replay.
const maxAttempts = 20

// Replay moves one dead letter back to its job stream: the XADD of its
// original fields and the XDEL of the dead letter run in one MULTI/EXEC,
// under WATCH of the dead stream, so a replay is never lost or doubled (two
// operators replaying the same letter: one wins, the other gets ErrGone).
func Replay(ctx context.Context, c redis.UniversalClient, p Pair, deadID string) (Replayed, error) {
	for i := 0; i < maxAttempts; i++ {
		var out Replayed
		err := c.Watch(ctx, func(tx *redis.Tx) error {
			msgs, err := tx.XRangeN(ctx, p.Dead, deadID, deadID, 1).Result()
			if err != nil {
				return fmt.Errorf("read dead letter %s: %w", deadID, err)
			}
			if len(msgs) == 0 {
				return fmt.Errorf("%w: %s", ErrGone, p.Dead)
			}
			dl := redisstream.ReadDeadLetter(msgs[0].Values)
			if dl.Truncated != "" {
				return fmt.Errorf("%w (%s: %s); not replayed", ErrTruncated, redisstream.FieldDeadTruncated, dl.Truncated)
			}
			fields := OriginalFields(dl.Original)
			if len(fields) == 0 {
				return fmt.Errorf("dead letter %s has no original fields to replay", deadID)
			}
			var add *redis.StringCmd
			if _, err := tx.TxPipelined(ctx, func(pl redis.Pipeliner) error {
				add = pl.XAdd(ctx, &redis.XAddArgs{Stream: p.Jobs, Values: flatten(fields)})
				pl.XDel(ctx, p.Dead, deadID)
				return nil
			}); err != nil {
				return err
			}
			out = Replayed{DeadID: deadID, OriginalID: dl.OriginalID, JobID: add.Val()}
			return nil
		}, p.Dead)
		if errors.Is(err, redis.TxFailedErr) {
			continue // the dead stream changed under WATCH; read again
		}
		if err != nil {
			return Replayed{}, fmt.Errorf("replay dead letter %s: %w", deadID, err)
		}
		return out, nil
	}
	return Replayed{}, fmt.Errorf("replay dead letter %s: the dead stream kept changing; try again", deadID)
}

// AllIDs returns the ids of every entry of stream, oldest first, read in
// pages: a snapshot, so a job dead-lettered again while it is replayed is
// not replayed twice by one run.
func AllIDs(ctx context.Context, c redis.UniversalClient, stream string) ([]string, error) {
	const page = 500
	var ids []string
	start := "-"
	for {
		msgs, err := c.XRangeN(ctx, stream, start, "+", page).Result()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		if len(msgs) < page {
			return ids, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// Field is one field of an original entry.
type Field struct{ Name, Value string }

// OriginalFields orders a dead letter's original entry
// (redisstream.ReadDeadLetter): the contract's job fields first, the rest
// sorted by name.
func OriginalFields(original map[string]string) []Field {
	out := make([]Field, 0, len(original))
	for name, v := range original {
		out = append(out, Field{name, v})
	}
	rank := func(n string) int {
		switch n {
		case "game_id":
			return 0
		case "reason", "engine":
			return 1
		case "requested_at_ms":
			return 2
		}
		return 3
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := rank(out[i].Name), rank(out[j].Name)
		if ri != rj {
			return ri < rj
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func flatten(fields []Field) []any {
	out := make([]any, 0, 2*len(fields))
	for _, f := range fields {
		out = append(out, f.Name, f.Value)
	}
	return out
}
