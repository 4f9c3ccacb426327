package main

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// tail prints the latest count entries of a stream, oldest first, and with
// follow keeps printing new ones until ctx ends (Ctrl-C: a normal end).
// view turns an entry into what print shows.
func tail[V any](ctx context.Context, c redis.UniversalClient, key string, count int64, follow bool,
	view func(redis.XMessage) (V, error), print func(views []V, header bool) error) error {
	after := "0-0"
	var views []V
	if count > 0 {
		msgs, err := c.XRevRangeN(ctx, key, "+", "-", count).Result()
		if err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		for i := len(msgs) - 1; i >= 0; i-- {
			v, err := view(msgs[i])
			if err != nil {
				return err
			}
			views = append(views, v)
		}
		if len(msgs) > 0 {
			after = msgs[0].ID
		}
	}
	if after == "0-0" && follow {
		var err error
		if after, err = lastID(ctx, c, key); err != nil {
			return err
		}
	}
	if err := print(views, true); err != nil {
		return err
	}
	if !follow {
		return nil
	}
	for {
		msgs, err := readAfter(ctx, c, key, after, pollBlock)
		if ctx.Err() != nil {
			return nil // interrupted: the normal end of --follow
		}
		if err != nil {
			return err
		}
		views = views[:0]
		for _, m := range msgs {
			v, err := view(m)
			if err != nil {
				return err
			}
			views = append(views, v)
			after = m.ID
		}
		if len(views) > 0 {
			if err := print(views, false); err != nil {
				return err
			}
		}
	}
}
