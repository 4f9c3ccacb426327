// Package jobclient is Lobby's side of the runtime-jobs wire, built on the
// same generated code and Redis Streams broker as rtmanager: it sends start
// and stop jobs through the generated UserController (so each lands on the
// shard of its game_id, as rtmanager expects) and awaits a job's result by
// its job id, reading only the result stream of that job's shard.
//
// Both sides must run with the same shard count (Options.Shards, rtmanager's
// --shards; both default to the contract's) and the same kind of Redis: a
// Redis Cluster client (redis.ClusterClient) selects the sharded keys.
package jobclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/contractschema"
	"galaxy/rtmanager/internal/redisstream"
)

// Channel keys of the contract this package uses.
const (
	stopJobsChannel   = "stopJobs"
	startJobsChannel  = "startJobs"
	jobResultsChannel = "jobResults"
)

// Job names a sent job: the entry id Redis gave it (the results' job_id)
// and its game as sent, which decides the shard of its result.
type Job struct {
	ID     string
	GameID string
}

// Client sends jobs and awaits their results. It is safe for concurrent
// use. The caller owns the Redis client and closes it after Close.
type Client struct {
	rdb     redis.UniversalClient
	opts    Options
	layout  api.Layout
	broker  *redisstream.Broker
	uc      *runtimejobs.UserController
	schemas *contractschema.Validator
	stop    *api.Channel
	start   *api.Channel
	results *api.Channel
	// decodeFields maps a result entry onto its payload (the broker's codec).
	decodeFields *redisstream.PayloadDecoder
}

// New builds a Client on rdb.
func New(rdb redis.UniversalClient, opts Options) (*Client, error) {
	if rdb == nil {
		return nil, errors.New("jobclient: nil redis client")
	}
	if err := opts.setDefaults(); err != nil {
		return nil, fmt.Errorf("jobclient: %w", err)
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("jobclient: %w", err)
	}
	doc := opts.Contract
	c := &Client{rdb: rdb, opts: opts, stop: doc.Channels[stopJobsChannel], start: doc.Channels[startJobsChannel], results: doc.Channels[jobResultsChannel]}
	if c.stop == nil || c.results == nil {
		return nil, errors.New("jobclient: the contract has no stopJobs or jobResults channel")
	}
	var err error
	if c.schemas, err = contractschema.New(doc); err != nil {
		return nil, fmt.Errorf("jobclient: %w", err)
	}
	if c.decodeFields, err = redisstream.NewPayloadDecoder(c.results); err != nil {
		return nil, fmt.Errorf("jobclient: %w", err)
	}
	c.broker, err = redisstream.New(rdb, redisstream.Options{Contract: doc, Shards: opts.Shards, Logger: opts.Logger})
	if err != nil {
		return nil, fmt.Errorf("jobclient: %w", err)
	}
	// The broker's layout, worked out from Shards and the kind of client
	// exactly as rtmanager's is.
	c.layout = c.broker.Layout()
	if c.uc, err = runtimejobs.NewUserController(c.broker); err != nil {
		_ = c.broker.Close(context.Background())
		return nil, fmt.Errorf("jobclient: %w", err)
	}
	return c, nil
}

// Layout is where the client's keys are.
func (c *Client) Layout() api.Layout { return c.layout }

// ResultsKey is the result stream key of a game's shard.
func (c *Client) ResultsKey(gameID string) string {
	return c.layout.Key(c.results, c.layout.ShardOf(gameID))
}

// JobsKey is the stop-job (start false) or start-job stream key of a
// game's shard: where a job for it must be written.
func (c *Client) JobsKey(gameID string, start bool) string {
	ch := c.stop
	if start {
		ch = c.start
	}
	return c.layout.Key(ch, c.layout.ShardOf(gameID))
}

// SendStop checks job against the contract's schema and appends it to
// the stop-job stream of its game's shard.
func (c *Client) SendStop(ctx context.Context, job runtimejobs.RuntimeStopJobSchema) (Job, error) {
	if err := c.check(c.stop, job); err != nil {
		return Job{}, err
	}
	var id string
	err := c.uc.SendToReceiveStopJobOperation(redisstream.WithEntryID(ctx, &id), runtimejobs.RuntimeStopJobMessage{Payload: job})
	if err != nil {
		return Job{}, fmt.Errorf("jobclient: send stop job for %q: %w", job.GameId, err)
	}
	return Job{ID: id, GameID: string(job.GameId)}, nil
}

// SendStart checks job against the contract's schema and appends it to
// the start-job stream of its game's shard.
func (c *Client) SendStart(ctx context.Context, job runtimejobs.RuntimeStartJobSchema) (Job, error) {
	if c.start == nil {
		return Job{}, errors.New("jobclient: the contract has no startJobs channel")
	}
	if err := c.check(c.start, job); err != nil {
		return Job{}, err
	}
	var id string
	err := c.uc.SendToReceiveStartJobOperation(redisstream.WithEntryID(ctx, &id), runtimejobs.RuntimeStartJobMessage{Payload: job})
	if err != nil {
		return Job{}, fmt.Errorf("jobclient: send start job for %q: %w", job.GameId, err)
	}
	return Job{ID: id, GameID: string(job.GameId)}, nil
}

// check validates a job against its channel's payload schema: the
// generated types do not run their validate tags, and a job rtmanager
// refuses is dead-lettered, so refusing it here is kinder.
func (c *Client) check(ch *api.Channel, job any) error {
	raw, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("jobclient: encode job: %w", err)
	}
	var payload map[string]any
	if err := json.Unmarshal(raw, &payload); err != nil {
		return fmt.Errorf("jobclient: encode job: %w", err)
	}
	if err := c.schemas.Validate(ch.Address, payload); err != nil {
		return fmt.Errorf("jobclient: %w", err)
	}
	return nil
}

// Close releases the client's broker; the Redis client stays open.
func (c *Client) Close() error {
	c.uc.Close(context.Background())
	return c.broker.Close(context.Background())
}
