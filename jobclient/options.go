package jobclient

import (
	"errors"
	"log/slog"
	"time"

	"galaxy/rtmanager/api"
)

// Defaults of Options, applied in one place (setDefaults).
const (
	// DefaultClockSkew is how far before its job's id Await starts reading
	// the results: a result is written by the Redis that holds the job's
	// shard, normally with a later id, but a failover to a replica whose
	// clock is behind could give it an earlier one.
	DefaultClockSkew = time.Second
	// DefaultPollBlock is the longest single XREAD BLOCK of Await; a
	// context without a deadline is checked at least this often.
	DefaultPollBlock = 5 * time.Second
	// DefaultRetryBackoff is Await's wait after a Redis connection error
	// before it reads again (a failover takes seconds).
	DefaultRetryBackoff = 200 * time.Millisecond
)

// Options configure a Client. Zero values take the defaults.
type Options struct {
	// Contract is the AsyncAPI document. Default: the embedded one, which is
	// the contract this package was generated from.
	Contract *api.Document
	// Shards is S, the number of shards of the deployment; it must be the
	// one rtmanager runs with (its --shards). Default 0: the contract's
	// x-redis-shards count.
	Shards int
	// ClockSkew: see DefaultClockSkew. Negative is an error.
	ClockSkew time.Duration
	// PollBlock: see DefaultPollBlock.
	PollBlock time.Duration
	// RetryBackoff: see DefaultRetryBackoff.
	RetryBackoff time.Duration
	// Logger receives the broker's logs. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) setDefaults() error {
	if o.Contract == nil {
		doc, err := api.Load()
		if err != nil {
			return err
		}
		o.Contract = doc
	}
	if o.ClockSkew == 0 {
		o.ClockSkew = DefaultClockSkew
	}
	if o.PollBlock == 0 {
		o.PollBlock = DefaultPollBlock
	}
	if o.RetryBackoff == 0 {
		o.RetryBackoff = DefaultRetryBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Validate reports options that cannot work.
func (o *Options) Validate() error {
	switch {
	case o.Shards < 0:
		return errors.New("shards must not be negative")
	case o.ClockSkew < 0:
		return errors.New("clock skew must not be negative")
	case o.PollBlock < time.Millisecond:
		return errors.New("poll block must be at least 1ms")
	case o.RetryBackoff < 0:
		return errors.New("retry backoff must not be negative")
	}
	return nil
}
