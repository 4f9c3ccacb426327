package jobclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
)

// Result is a job's result: the contract's fields and the id of its entry
// on the result stream.
type Result struct {
	EntryID string
	runtimejobs.RuntimeJobResultSchema
}

// Await reads the result stream of job's shard until job's result arrives
// or ctx ends. It starts ClockSkew before the job's id, so a result is
// found whether Await is called before or after it was written, as long
// as the stream still holds it (its maxlen is 1,000,000 per shard).
// Connection errors (a failover) are retried until ctx ends.
func (c *Client) Await(ctx context.Context, job Job) (Result, error) {
	after, err := startBefore(job.ID, c.opts.ClockSkew)
	if err != nil {
		return Result{}, fmt.Errorf("jobclient: await job %q: %w", job.ID, err)
	}
	key := c.ResultsKey(job.GameID)
	for {
		if err := ctx.Err(); err != nil {
			return Result{}, fmt.Errorf("jobclient: await job %s on %s: %w", job.ID, key, err)
		}
		block := c.opts.PollBlock
		if dl, ok := ctx.Deadline(); ok {
			block = min(block, max(time.Until(dl), time.Millisecond))
		}
		res, err := c.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{key, after}, Count: 256, Block: block}).Result()
		switch {
		case errors.Is(err, redis.Nil):
			continue
		case err != nil && ctx.Err() == nil && redisstream.IsConnError(err):
			c.opts.Logger.Warn("jobclient: reading results failed; retrying", "stream", key, "error", err)
			select {
			case <-time.After(c.opts.RetryBackoff):
			case <-ctx.Done():
			}
			continue
		case err != nil:
			return Result{}, fmt.Errorf("jobclient: await job %s on %s: %w", job.ID, key, err)
		}
		for _, s := range res {
			for _, m := range s.Messages {
				after = m.ID
				if v, _ := m.Values["job_id"].(string); v != job.ID {
					continue
				}
				return c.decodeResult(m)
			}
		}
	}
}

func (c *Client) decodeResult(m redis.XMessage) (Result, error) {
	out := Result{EntryID: m.ID}
	payload, err := c.decodeFields.Decode(m.Values)
	if err != nil {
		return out, fmt.Errorf("jobclient: result %s: %w", m.ID, err)
	}
	if err := json.Unmarshal(payload, &out.RuntimeJobResultSchema); err != nil {
		return out, fmt.Errorf("jobclient: result %s: %w", m.ID, err)
	}
	return out, nil
}

// startBefore is the stream id skew before id: results at or after it are
// read (XREAD reads after the id it is given).
func startBefore(id string, skew time.Duration) (string, error) {
	msPart, _, ok := strings.Cut(id, "-")
	ms, err := strconv.ParseUint(msPart, 10, 64)
	if !ok || err != nil {
		return "", fmt.Errorf("not a stream entry id")
	}
	back := uint64(skew.Milliseconds()) + 1
	if ms < back {
		return "0-0", nil
	}
	return strconv.FormatUint(ms-back, 10) + "-18446744073709551615", nil
}
