package redisstream

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"galaxy/rtmanager/api"
)

// The defaults of Options, one per option, applied in one place
// (setDefaults). Binaries that expose an option as a flag use these for the
// flag's default, so the two cannot drift.
const (
	// DefaultStartID starts a group the broker creates at the stream's
	// beginning: nothing appended before the first start is skipped.
	DefaultStartID = "0"
	// DefaultReadCount is the most entries one XREADGROUP asks for.
	DefaultReadCount = 256
	// DefaultMaxBytesInHand bounds the bytes of the entries a channel holds.
	DefaultMaxBytesInHand = 64 << 20
	// DefaultBlock is how long one XREADGROUP waits for entries.
	DefaultBlock = time.Second
	// DefaultMaxDeliveries is how many deliveries an entry gets before it is
	// dead-lettered.
	DefaultMaxDeliveries = 5
	// DefaultRetryBackoff is the wait before the first redelivery after a Nak.
	DefaultRetryBackoff = 500 * time.Millisecond
	// DefaultMaxRetryBackoff caps the doubling retry backoff; it is kept
	// below DefaultClaimIdle.
	DefaultMaxRetryBackoff = 10 * time.Second
	// DefaultClaimIdle is how long another consumer's entry must sit
	// unacknowledged before it is claimed.
	DefaultClaimIdle = 30 * time.Second
	// DefaultClaimIntervalDivisor: pending entries are looked for every
	// ClaimIdle/DefaultClaimIntervalDivisor unless ClaimInterval is set.
	DefaultClaimIntervalDivisor = 3
	// DefaultConsumerIdle is how long a consumer with nothing pending may
	// stay idle before it is removed from the group.
	DefaultConsumerIdle = time.Hour
	// DefaultMaxFieldSize bounds each field of a received entry, in bytes.
	DefaultMaxFieldSize = 64 << 10
	// DefaultMaxFields bounds the number of fields of a received entry.
	DefaultMaxFields = 64
	// DefaultCommitBatch is the most acknowledgements written in one round
	// trip.
	DefaultCommitBatch = 256
	// DefaultMaxContinuing bounds, per channel, the continuations running at
	// once. A waiting stop costs a goroutine and a file descriptor or so;
	// 16384 of them fit in tens of MiB.
	DefaultMaxContinuing = 16384
	// DefaultReconnectMin and DefaultReconnectMax bound the backoff after a
	// Redis error: reading resumes within about 2s of Redis coming back.
	DefaultReconnectMin = 100 * time.Millisecond
	DefaultReconnectMax = 2 * time.Second
	// DefaultShards (0) takes the contract's x-redis-shards count.
	DefaultShards = 0
)

// Options configure a Broker. Zero values take the defaults above; the
// Prefetch, ClaimInterval and Consumer defaults are derived.
type Options struct {
	// Contract is the AsyncAPI document whose x-redis-stream extensions
	// describe the channels. Default: the embedded contract (api.Load).
	Contract *api.Document
	// Shards is S, how many stream keys each channel is spread over
	// (api.Layout, shard.go). The sharded keys are used on a Redis Cluster
	// and whenever S > 1; a single Redis with S = 1 keeps the channel
	// addresses. Lobby and every rtmanager replica must use the same S.
	// Default DefaultShards: the contract's x-redis-shards count.
	Shards int
	// Groups overrides the consumer group of a channel, by address.
	// Default: the channel's x-redis-stream.group.
	Groups map[string]string
	// Consumer is this process's consumer name; it must be unique per
	// process. Default: DefaultConsumerName() (DefaultConsumerForm).
	Consumer string
	// StartID is where a consumer group starts when the broker creates it:
	// "$" (new entries only), "0" (the whole stream) or an entry id.
	// Default DefaultStartID.
	StartID string
	// ReadCount is the most entries one XREADGROUP asks for. Default
	// DefaultReadCount.
	ReadCount int
	// Prefetch bounds the entries a channel reads ahead into the process
	// (queued, being handled, waiting to be committed or retried). Deeper
	// means more throughput for fast handlers; shallower spreads slow jobs
	// more evenly over replicas. Default 2×ReadCount + the channel's
	// subscriptions.
	Prefetch int
	// MaxBytesInHand bounds the bytes of the entries a channel holds (field
	// names and values), as Prefetch bounds their number: reads stop when
	// it is used up, and a read asks for no more entries than the rest of
	// it holds at the size of the largest entry lately read. Claims may
	// hold as much again. Default DefaultMaxBytesInHand.
	MaxBytesInHand int64
	// Block is how long one XREADGROUP waits for entries (never 0, which
	// would block forever). Default DefaultBlock.
	Block time.Duration
	// MaxDeliveries is how many times an entry is delivered before it is
	// dead-lettered. Default DefaultMaxDeliveries.
	MaxDeliveries int
	// RetryBackoff is the wait before the first redelivery after a Nak; it
	// doubles per delivery up to MaxRetryBackoff. Default
	// DefaultRetryBackoff.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps RetryBackoff. Default DefaultMaxRetryBackoff.
	MaxRetryBackoff time.Duration
	// ClaimIdle is how long an entry must sit unacknowledged with another
	// consumer before this one claims it (XAUTOCLAIM). Entries this process
	// holds are kept fresh so they are not claimed while alive. Default
	// DefaultClaimIdle.
	ClaimIdle time.Duration
	// ClaimInterval is how often pending entries are looked for. Default
	// ClaimIdle/DefaultClaimIntervalDivisor.
	ClaimInterval time.Duration
	// ConsumerIdle is how long a consumer with nothing pending may stay idle
	// before it is removed from the group. Default DefaultConsumerIdle;
	// negative disables.
	ConsumerIdle time.Duration
	// MaxFieldSize bounds each field of a received entry, in bytes. Default
	// DefaultMaxFieldSize.
	MaxFieldSize int
	// MaxFields bounds the number of fields of a received entry. Default
	// DefaultMaxFields.
	MaxFields int
	// MaxLen overrides a channel's x-redis-stream.maxlen, by address.
	MaxLen map[string]int64
	// CommitBatch is the most acknowledgements written in one round trip.
	// Default DefaultCommitBatch.
	CommitBatch int
	// MaxContinuing bounds, per channel, the entries whose handling goes on
	// in a continuation (Delivery.Continue) after their worker was freed.
	// They do not count against Prefetch, so this is what bounds them (and
	// the memory they hold); a handler that continues beyond it keeps its
	// worker until a continuation ends. Default DefaultMaxContinuing;
	// negative runs continuations in the worker, as if Continue were a
	// plain call.
	MaxContinuing int
	// ReconnectMin and ReconnectMax bound the backoff (with jitter) after a
	// Redis error. Defaults DefaultReconnectMin and DefaultReconnectMax.
	ReconnectMin, ReconnectMax time.Duration
	// Logger receives the broker's logs. Default slog.Default().
	Logger *slog.Logger
	// Observer is told about deliveries, commits and dead letters, for
	// metrics. Default: none.
	Observer Observer
	// Atomic forces (true) or forbids (false) the atomic publish-and-ack
	// script. Default: atomic. (On a Cluster the layout is always sharded,
	// and one shard's keys share a slot, so the script can touch them.)
	Atomic *bool
}

// setDefaults fills every zero option with its default. It fails only if
// the embedded contract cannot be loaded.
func (o *Options) setDefaults() error {
	if o.Contract == nil {
		doc, err := api.Load()
		if err != nil {
			return err
		}
		o.Contract = doc
	}
	if o.Consumer == "" {
		o.Consumer = DefaultConsumerName()
	}
	ifZero(&o.StartID, DefaultStartID)
	orDefault(&o.ReadCount, DefaultReadCount)
	orDefault(&o.MaxBytesInHand, DefaultMaxBytesInHand)
	orDefault(&o.Block, DefaultBlock)
	orDefault(&o.MaxDeliveries, DefaultMaxDeliveries)
	orDefault(&o.RetryBackoff, DefaultRetryBackoff)
	orDefault(&o.MaxRetryBackoff, DefaultMaxRetryBackoff)
	orDefault(&o.ClaimIdle, DefaultClaimIdle)
	orDefault(&o.ClaimInterval, o.ClaimIdle/DefaultClaimIntervalDivisor)
	// Negative values mean "none" for these two.
	ifZero(&o.ConsumerIdle, DefaultConsumerIdle)
	ifZero(&o.MaxContinuing, DefaultMaxContinuing)
	orDefault(&o.MaxFieldSize, DefaultMaxFieldSize)
	orDefault(&o.MaxFields, DefaultMaxFields)
	orDefault(&o.CommitBatch, DefaultCommitBatch)
	orDefault(&o.ReconnectMin, DefaultReconnectMin)
	orDefault(&o.ReconnectMax, DefaultReconnectMax)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	return nil
}

// ifZero sets *v to def when it is the zero value.
func ifZero[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// orDefault sets *v to def when it is zero or negative.
func orDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Validate reports an option no default can mend. Zero values are valid:
// they take their defaults.
func (o Options) Validate() error {
	if o.Shards < 0 || o.Shards > api.MaxShardCount {
		return fmt.Errorf("shards %d: want 0 (the contract's count) or 1..%d", o.Shards, api.MaxShardCount)
	}
	if o.StartID != "" {
		if err := ValidStartID(o.StartID); err != nil {
			return err
		}
	}
	return nil
}

// ValidStartID accepts "$", "0" or an entry id such as 1764160000000-0.
func ValidStartID(id string) error {
	if id == "$" || id == "0" {
		return nil
	}
	ms, seq, ok := strings.Cut(id, "-")
	if _, err := strconv.ParseUint(ms, 10, 64); err != nil {
		return fmt.Errorf("start id %q: want $, 0 or an entry id like 1764160000000-0", id)
	}
	if ok {
		if _, err := strconv.ParseUint(seq, 10, 64); err != nil {
			return fmt.Errorf("start id %q: want $, 0 or an entry id like 1764160000000-0", id)
		}
	}
	return nil
}

// DefaultConsumerForm is the form of DefaultConsumerName, for help texts.
const DefaultConsumerForm = "hostname-pid-random"

// DefaultConsumerName is hostname-pid-random: unique per process (pid 1 in
// every container and one host name per pod template would otherwise make
// replicas share a name and steal each other's jobs), readable in XINFO
// CONSUMERS.
func DefaultConsumerName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "rtmanager"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
