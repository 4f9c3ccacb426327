package runtimestore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/stopruntime"
)

// Fields the runtime watch writes (docs/persistence.md).
const (
	fExitCode         = "exit_code"
	fOOMKilled        = "oom_killed"
	fFinishedAtMS     = "finished_at_ms"
	fFailureReason    = "failure_reason"
	fUnhealthySinceMS = "unhealthy_since_ms"
)

// Change is one unrequested change of a runtime that the watch saw: the
// record moves From → To only if it still has status From and container
// ContainerID (compare and set), and Event (the runtime event's stream
// fields, in order) is appended to the events stream in the same script.
type Change struct {
	GameID      string
	ContainerID string
	From, To    string
	NowMS       int64
	// Exit details (To == exited): ExitCode nil when unknown.
	ExitCode  *int64
	OOMKilled bool
	Reason    string
	Event     []string
}

// ErrStale means the record no longer had the expected status or
// container: someone else (a stop job, another replica) changed it first.
// The error is a *StaleError, which says what the record holds now.
var ErrStale = errors.New("record changed meanwhile")

// StaleError is a transition refused because the record changed; Status
// is empty when there is no record.
type StaleError struct {
	GameID, From        string
	Status, ContainerID string
}

func (e *StaleError) Error() string {
	if e.Status == "" {
		return fmt.Sprintf("transition of game %s: no record: %v", e.GameID, ErrStale)
	}
	return fmt.Sprintf("transition of game %s from %s: now %s with container %q: %v", e.GameID, e.From, e.Status, e.ContainerID, ErrStale)
}

func (e *StaleError) Unwrap() error { return ErrStale }

// transitionLua moves one record from one status to another and appends
// the event, or writes nothing. Every check comes before the first write
// (Redis does not roll back a script that fails halfway): the event
// stream's type, the arguments, the record's status and container.
// KEYS[1] record, KEYS[2] events stream; ARGV: from, to, container_id,
// now_ms, maxlen (0: unbounded), exit_code (” unknown), oom_killed ('0'|'1'), reason,
// then the event's fields.
const transitionLua = `
local t = redis.call('TYPE', KEYS[2])['ok']
if t ~= 'none' and t ~= 'stream' then
  return redis.error_reply('WRONGTYPE events stream ' .. KEYS[2] .. ' holds a ' .. t)
end
local from, to, cid, now, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not tonumber(now) or not tonumber(maxlen) or #ARGV < 10 or (#ARGV - 8) % 2 ~= 0 then
  return redis.error_reply('ERR transition: bad arguments')
end
local r = redis.call('HMGET', KEYS[1], 'status', 'container_id')
if not r[1] then return {'not_found'} end
if r[1] ~= from or (r[2] or '') ~= cid then return {'stale', r[1], r[2] or ''} end
local event = {}
for i = 9, #ARGV do event[#event + 1] = ARGV[i] end
local id
if tonumber(maxlen) > 0 then
  id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', unpack(event))
else
  id = redis.call('XADD', KEYS[2], '*', unpack(event))
end
redis.call('HSET', KEYS[1], 'status', to, 'updated_at_ms', now, 'failure_reason', ARGV[8])
if to == 'exited' then
  redis.call('HSET', KEYS[1], 'finished_at_ms', now, 'oom_killed', ARGV[7])
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'exit_code', ARGV[6]) else redis.call('HDEL', KEYS[1], 'exit_code') end
  redis.call('HDEL', KEYS[1], 'unhealthy_since_ms')
elseif to == 'unhealthy' then
  redis.call('HSET', KEYS[1], 'unhealthy_since_ms', now)
else
  redis.call('HDEL', KEYS[1], 'unhealthy_since_ms', 'failure_reason')
end
return {'ok', id}
`

// maxEventFields bounds an event's fields: an event is small, and a Lua
// unpack of many values hits the stack limit.
const maxEventFields = 64

// Transition applies c with its event, appended to eventsKey: the event's
// entry id on success, ErrStale (wrapped) when the record changed first or
// is gone. In a sharded layout eventsKey must be the events stream of the
// game's shard (api.Layout.Key of the channel and ShardOf the game): it
// shares the record's slot, so the script runs on a Redis Cluster too. Not
// sharded, the two sit on different slots, which only a single Redis takes.
func (s *Store) Transition(ctx context.Context, eventsKey string, maxLen int64, c Change) (string, error) {
	key, err := s.key(c.GameID)
	if err != nil {
		return "", fmt.Errorf("transition: %w", err)
	}
	if s.keys.layout.Sharded && hashTag(eventsKey) != hashTag(key) {
		// On a single Redis nothing would refuse it: the event would land
		// in another shard's stream, where the game's reader does not look.
		return "", fmt.Errorf("transition of game %s: events stream %q is not in the shard of its record %q", c.GameID, eventsKey, key)
	}
	if len(c.Event) == 0 || len(c.Event)%2 != 0 || len(c.Event) > maxEventFields {
		return "", fmt.Errorf("transition of game %s: event has %d field values", c.GameID, len(c.Event))
	}
	code := ""
	if c.ExitCode != nil {
		code = strconv.FormatInt(*c.ExitCode, 10)
	}
	oom := "0"
	if c.OOMKilled {
		oom = "1"
	}
	args := make([]any, 0, 8+len(c.Event))
	args = append(args, c.From, c.To, c.ContainerID, c.NowMS, maxLen, code, oom, c.Reason)
	for _, f := range c.Event {
		args = append(args, f)
	}
	v, err := s.transition.Run(ctx, s.c, []string{key, eventsKey}, args...).Slice()
	if err != nil {
		return "", fmt.Errorf("transition of game %s to %s: %w", c.GameID, c.To, err)
	}
	verdict, _ := v[0].(string)
	switch verdict {
	case "ok":
		id, _ := v[1].(string)
		return id, nil
	case "not_found":
		return "", &StaleError{GameID: c.GameID, From: c.From}
	case "stale":
		st, _ := v[1].(string)
		cid, _ := v[2].(string)
		return "", &StaleError{GameID: c.GameID, From: c.From, Status: st, ContainerID: cid}
	}
	return "", fmt.Errorf("transition of game %s: unexpected reply %v", c.GameID, v)
}

// watchedFields are read for each record by Watched.
var watchedFields = []string{fStatus, fContainerID, fEngineEndpoint, fRuntime, fEngine}

// Watched returns the records whose status is one of statuses: a SCAN over
// the record keys of the layout (pages of scanCount) and one pipelined
// HMGET per page. On Redis Cluster the scan runs on every master.
func (s *Store) Watched(ctx context.Context, statuses ...string) ([]stopruntime.Record, error) {
	cc, ok := s.c.(*redis.ClusterClient)
	if !ok {
		return s.scanWatched(ctx, s.c, statuses)
	}
	var mu sync.Mutex
	var out []stopruntime.Record
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		recs, err := s.scanWatched(ctx, node, statuses)
		mu.Lock()
		out = append(out, recs...)
		mu.Unlock()
		return err
	})
	return out, err
}

// scanWatched scans the record keys of one node.
func (s *Store) scanWatched(ctx context.Context, node redis.Cmdable, statuses []string) ([]stopruntime.Record, error) {
	var out []stopruntime.Record
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, s.keys.recordPattern(), scanCount).Result()
		if err != nil {
			return out, fmt.Errorf("scan runtime records: %w", err)
		}
		recs, err := s.readWatched(ctx, node, keys, statuses)
		if err != nil {
			return out, err
		}
		out = append(out, recs...)
		if next == 0 {
			return out, nil
		}
		cursor = next
	}
}

const scanCount = 1000

func (s *Store) readWatched(ctx context.Context, c redis.Cmdable, keys []string, statuses []string) ([]stopruntime.Record, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.SliceCmd, len(keys))
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HMGet(ctx, k, watchedFields...)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) && !isWrongType(err) {
		return nil, fmt.Errorf("read runtime records: %w", err)
	}
	var out []stopruntime.Record
	for i, cmd := range cmds {
		v, err := cmd.Result()
		if err != nil || len(v) != len(watchedFields) {
			continue // a key of another type under the prefix: not a record
		}
		str := func(j int) string { s, _ := v[j].(string); return s }
		st := str(0)
		if st == "" || !slices.Contains(statuses, st) {
			continue
		}
		id, ok := s.keys.gameIDOf(keys[i])
		if !ok {
			continue
		}
		out = append(out, stopruntime.Record{GameID: id, Status: st, ContainerID: str(1), EngineEndpoint: str(2), Runtime: str(3), Engine: str(4)})
	}
	return out, nil
}

func isWrongType(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE") }

// decodeWatchFields reads the runtime watch's fields of a record hash.
func decodeWatchFields(rec *stopruntime.Record, m map[string]string) error {
	rec.FailureReason = m[fFailureReason]
	rec.OOMKilled = m[fOOMKilled] == "1"
	if raw := m[fExitCode]; raw != "" {
		n, err := parseInt(fExitCode, raw)
		if err != nil {
			return err
		}
		rec.ExitCode = &n
	}
	var err error
	if rec.FinishedAtMS, err = parseInt(fFinishedAtMS, m[fFinishedAtMS]); err != nil {
		return err
	}
	rec.UnhealthySinceMS, err = parseInt(fUnhealthySinceMS, m[fUnhealthySinceMS])
	return err
}
