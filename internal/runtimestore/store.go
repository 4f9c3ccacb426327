// Package runtimestore keeps runtime records and the operation log in Redis;
// it implements stopruntime.Store. Keys and fields are documented in
// docs/persistence.md.
//
// State transitions run as Lua scripts (atomic per game across replicas),
// loaded once per process by redis.NewScript and called with EVALSHA (EVAL
// only after a script-cache flush). Keys (keys.go) follow Options.Layout:
// sharded, a record and its shard's operation log share a Cluster slot and
// the finishing scripts append the log entry themselves (logged.go: one
// round trip, one atomic step); not sharded, they sit on different slots,
// so the finishing script and the log entry travel in one pipeline (one
// round trip, not one transaction). Either way a log entry that cannot be
// written does not fail the transition it records.
package runtimestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/stopruntime"
)

// Options tune a Store. Zero values take the documented defaults.
type Options struct {
	// KeyPrefix starts every key. Default "rtmanager:"; records are
	// KeyPrefix+"runtime:{<game_id>}", the log KeyPrefix+"operations", or
	// in a sharded layout KeyPrefix+"{rt-N}:runtime:<game_id>" and
	// KeyPrefix+"{rt-N}:operations" (keys.go). It must hold no brace.
	KeyPrefix string
	// OperationsMaxLen bounds each operation log (XADD MAXLEN ~). Default 100000.
	OperationsMaxLen int64
	// Layout is where the keys are (api.NewLayout); the zero value is not
	// sharded: the keys above without a shard, as before sharding existed.
	Layout api.Layout
	// Logger is told about operation log entries that could not be
	// written (they never fail a transition). Default slog.Default().
	Logger *slog.Logger
}

// Store is the Redis stopruntime.Store. It is safe for concurrent use.
type Store struct {
	c      redis.UniversalClient
	keys   keys
	maxLen any // OperationsMaxLen, boxed once
	log    *slog.Logger

	begin, finish *script
	finishLogged  *script      // sharded layout (logged.go)
	start         startScripts // start.go
	register      *redis.Script
	transition    *redis.Script // watch.go
	batch         *batcher
	pool          callPool // the stop path's calls, recycled (pool.go)
}

var _ stopruntime.Store = (*Store)(nil)

// New builds a Store on c, which the caller owns and closes.
func New(c redis.UniversalClient, opts Options) *Store {
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "rtmanager:"
	}
	if opts.OperationsMaxLen <= 0 {
		opts.OperationsMaxLen = 100000
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var maxLen any = opts.OperationsMaxLen
	return &Store{
		c: c, keys: newKeys(opts.KeyPrefix, opts.Layout), maxLen: maxLen, log: opts.Logger,
		begin:        newScript(beginLua),
		finish:       newScript(finishLua),
		finishLogged: newLoggedScript(finishLoggedLua),
		start:        newStartScripts(),
		register:     redis.NewScript(registerLua),
		transition:   redis.NewScript(transitionLua),
		batch:        newBatcher(c, opts.Layout.Sharded, maxLen),
	}
}

// Field names of a record hash.
const (
	fStatus          = "status"
	fContainerID     = "container_id"
	fEngineEndpoint  = "engine_endpoint"
	fRuntime         = "runtime"
	fUpdatedAtMS     = "updated_at_ms"
	fLastJobID       = "last_job_id"
	fLastResult      = "last_result"
	fStoppingJobID   = "stopping_job_id"
	fStoppingSinceMS = "stopping_since_ms"
	// Start fields (start.go).
	fEngine          = "engine"
	fStartingJobID   = "starting_job_id"
	fStartingSinceMS = "starting_since_ms"
	fLastStartJobID  = "last_start_job_id"
	fLastStartResult = "last_start_result"
)

// recordFields is the order in which the stop scripts return a record's
// fields (their HMGET); parseFields reads them by position.
var recordFields = [...]string{fStatus, fContainerID, fEngineEndpoint, fRuntime, fUpdatedAtMS,
	fLastJobID, fLastResult, fStoppingJobID, fStoppingSinceMS}

// Lua sources; New turns them into redis.Scripts once (SHA computed there).
const (
	// Stop transitions of one or more records, atomically as one script
	// (the batcher sends every begin waiting for a round trip as one call).
	// KEYS[i] record i; ARGV[3i-2..3i] its job, now_ms, takeover_ms.
	// Returns per record one string (packLua): the verdict, the fields as
	// after the call and, when it began a stop, the previous
	// stopping_job_id. The fields are one HMGET in recordFields order,
	// patched in Lua with what HSET wrote, so no second read and no field
	// names on the wire. A record that fails (a key of the wrong type, say)
	// gets its own error reply and does not fail the others.
	beginLua = packLua + `
local function begin(key, job, now, takeover)
  local r = redis.call('HMGET', key, 'status', 'container_id', 'engine_endpoint', 'runtime', 'updated_at_ms', 'last_job_id', 'last_result', 'stopping_job_id', 'stopping_since_ms')
  if not tonumber(now) or not tonumber(takeover) or not job or job == '' then
    return {err = 'begin stop: bad arguments'}
  end
  local status, last, owner, since = r[1], r[6], r[8], r[9]
  if not status then return pack('not_found') end
  if last == job then return pack('done', r) end
  if status == 'stopped' or status == 'removed' or status == 'exited' then return pack('replay', r) end
  local verdict = 'started'
  if status == 'starting' then
    -- A start owns the game: busy until it finishes, unless it is stale.
    local ss = tonumber(redis.call('HGET', key, 'starting_since_ms')) or 0
    if tonumber(now) - ss < tonumber(takeover) then return pack('busy', r) end
    redis.call('HDEL', key, 'starting_job_id', 'starting_since_ms')
  end
  if status == 'stopping' then
    if owner == job then
      verdict = 'resumed'
    elseif tonumber(now) - (tonumber(since) or 0) >= tonumber(takeover) then
      verdict = 'taken_over'
    else
      return pack('busy', r)
    end
  end
  redis.call('HSET', key, 'status', 'stopping', 'stopping_job_id', job, 'stopping_since_ms', now, 'updated_at_ms', now)
  r[1], r[5], r[8], r[9] = 'stopping', now, job, now
  return pack(verdict, r, owner or '')
end
local out = {}
for i = 1, #KEYS do
  local ok, res = pcall(begin, KEYS[i], ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i])
  if ok or (type(res) == 'table' and res.err) then out[i] = res else out[i] = {err = tostring(res)} end
end
return out
`

	// KEYS[i] record i; ARGV[4i-3..4i] its job, now_ms, final status,
	// last_result JSON. Returns per record the integer 1 once written (the
	// caller knows the record: FinishRequest.Begun), else one string
	// (packLua) with the verdict and the fields in recordFields order, or
	// an error reply.
	finishLua = finishFn + `
local out = {}
for i = 1, #KEYS do
  local ok, res = pcall(finish, KEYS[i], ARGV[4 * i - 3], ARGV[4 * i - 2], ARGV[4 * i - 1], ARGV[4 * i])
  if ok or (type(res) == 'table' and res.err) then out[i] = res else out[i] = {err = tostring(res)} end
end
return out
`
	// finishLua that also appends each record's log entry (loggedLoop).
	finishLoggedLua = finishFn + "local fn, nargs = finish, 4\n" + loggedLoop

	// finish of one record: see finishLua.
	finishFn = packLua + `
local function finish(key, job, now, status, result)
  if (status ~= 'stopped' and status ~= 'failed') or not tonumber(now) or not job or job == '' or not result or result == '' then
    return {err = 'finish stop: bad arguments'}
  end
  local st = redis.call('HMGET', key, 'status', 'stopping_job_id', 'last_job_id')
  if not st[1] then return pack('not_found') end
  if st[1] ~= 'stopping' or st[2] ~= job then
    local r = redis.call('HMGET', key, 'status', 'container_id', 'engine_endpoint', 'runtime', 'updated_at_ms', 'last_job_id', 'last_result', 'stopping_job_id', 'stopping_since_ms')
    if st[3] == job then return pack('done', r) end
    return pack('lost', r)
  end
  redis.call('HSET', key, 'status', status, 'updated_at_ms', now, 'last_job_id', job, 'last_result', result)
  redis.call('HDEL', key, 'stopping_job_id', 'stopping_since_ms')
  return 1
end
`

	// pack(verdict, r, extra) is a stop script's reply for one record as
	// one string: the verdict, then (when r is given) the 9 fields of r
	// and extra, each as <length>:<bytes>, a missing field as "0:". The
	// client reads one bulk string per record instead of an array of a
	// dozen, each of which it would allocate twice (unpackStop).
	packLua = `
local function pack(verdict, r, extra)
  local t = {#verdict, ':', verdict}
  if r then
    for i = 1, 9 do
      local v = r[i] or ''
      t[3 * i + 1], t[3 * i + 2], t[3 * i + 3] = #v, ':', v
    end
    if extra then t[31], t[32], t[33] = #extra, ':', extra end
  end
  return table.concat(t)
end
`

	// KEYS[1] record; ARGV status, container_id, engine_endpoint, runtime, now_ms.
	registerLua = `
local key = KEYS[1]
local st = redis.call('HGET', key, 'status')
if not ARGV[1] or ARGV[1] == '' or not tonumber(ARGV[5]) then return redis.error_reply('ERR register: bad arguments') end
if st == 'stopping' or st == 'starting' then return {'busy', redis.call('HGETALL', key)} end
redis.call('HSET', key, 'status', ARGV[1], 'container_id', ARGV[2], 'engine_endpoint', ARGV[3], 'runtime', ARGV[4], 'updated_at_ms', ARGV[5])
redis.call('HDEL', key, 'stopping_job_id', 'stopping_since_ms', 'exit_code', 'oom_killed', 'finished_at_ms', 'failure_reason', 'unhealthy_since_ms')
return {'ok', redis.call('HGETALL', key)}
`
)

// BeginLua and FinishLua are the Lua sources of the stop transition (one
// reply per key; with one key, ARGV as BeginStop and FinishStop pass them;
// a record's reply is read by SplitStopReply), exported so cmd/rtbench can
// pipeline the very same transition in its reference pipelines without
// this package's per-call API.
const (
	BeginLua  = beginLua
	FinishLua = finishLua
)

// RecordFields returns the order of the fields in the stop scripts' replies.
func RecordFields() []string { return recordFields[:] }

// SplitStopReply reads one record's reply of BeginLua or FinishLua: the
// verdict and, when the reply has them, the fields in RecordFields order
// (n is how many; 0 for not_found and for a finish's "ok"). The strings
// share the reply's memory.
func SplitStopReply(v any) (verdict string, fields [len(recordFields)]string, n int, err error) {
	var items [len(recordFields) + 2]string
	verdict, n, err = unpackStop(v, &items)
	copy(fields[:], items[1:])
	return verdict, fields, max(0, min(n-1, len(recordFields))), err
}

// RecordKey is the key of a game's record (keys.go). The id must already
// be valid (stopruntime.ValidateGameID).
func (s *Store) RecordKey(gameID string) string { return s.keys.record(gameID) }

// RecordPattern is the SCAN MATCH pattern of the record keys in this
// layout.
func (s *Store) RecordPattern() string { return s.keys.recordPattern() }

// GameIDOf is the game id of a record key SCAN found; false when key is not
// the record key of a valid game id in this layout (another shard count's,
// or one an operator made by hand).
func (s *Store) GameIDOf(key string) (string, bool) { return s.keys.gameIDOf(key) }

// OperationsKey is the key of the operation log stream; in a sharded
// layout, shard 0's (OperationsKeys lists every shard's).
func (s *Store) OperationsKey() string { return s.keys.operations(0) }

// OperationsKeyOf is the operation log of the game's shard: where its
// entries go.
func (s *Store) OperationsKeyOf(gameID string) string { return s.keys.operations(s.keys.shard(gameID)) }

// OperationsKeys are the operation logs of every shard, shard 0 first; one
// key when not sharded.
func (s *Store) OperationsKeys() []string { return s.keys.allOperations() }

func (s *Store) key(gameID string) (string, error) {
	// Checked again here so no caller can build a key from an unchecked id.
	if err := stopruntime.ValidateGameID(gameID); err != nil {
		return "", err
	}
	return s.keys.record(gameID), nil
}

// Preload loads the scripts into the server's script cache, so the first
// calls need no EVAL fallback. Optional.
func (s *Store) Preload(ctx context.Context) error {
	for _, sc := range []*redis.Script{s.begin.Script, s.finish.Script, s.finishLogged.Script,
		s.start.begin.Script, s.start.finish.Script, s.start.finishLogged.Script, s.register, s.transition} {
		if err := sc.Load(ctx, s.c).Err(); err != nil {
			return fmt.Errorf("load runtime store scripts: %w", err)
		}
	}
	return nil
}

// BeginStop implements stopruntime.Store.
func (s *Store) BeginStop(ctx context.Context, req stopruntime.BeginRequest) (stopruntime.BeginResponse, error) {
	key, err := s.key(req.GameID)
	if err != nil {
		return stopruntime.BeginResponse{}, fmt.Errorf("begin stop: %w", err)
	}
	c := s.pool.call()
	c.script, c.key, c.shard = s.begin, key, s.keys.shard(req.GameID)
	c.job, c.now, c.takeover = req.JobID, req.NowMS, req.TakeoverMS
	c.args = append(c.argv[:0], &c.job, &c.now, &c.takeover)
	if err := s.batch.do(ctx, c); err != nil {
		return stopruntime.BeginResponse{}, fmt.Errorf("begin stop: run script: %w", err)
	}
	v, err := c.value()
	s.pool.putCall(c)
	if err != nil {
		return stopruntime.BeginResponse{}, fmt.Errorf("begin stop: run script: %w", err)
	}
	verdict, rec, prev, err := parseFields(req.GameID, v, true)
	if err != nil {
		return stopruntime.BeginResponse{}, fmt.Errorf("begin stop: %w", err)
	}
	if verdict == string(stopruntime.BeginTakenOver) {
		// Report whose stop was taken over rather than our own id.
		rec.StoppingJobID = prev
	}
	return stopruntime.BeginResponse{Verdict: stopruntime.BeginVerdict(verdict), Record: rec}, nil
}

// FinishStop implements stopruntime.Store: the finishing script and the log
// entry go in one round trip (logCall). An entry that could not be written
// is reported to the logger, not returned: the record is final.
func (s *Store) FinishStop(ctx context.Context, req stopruntime.FinishRequest, op stopruntime.Operation) (stopruntime.FinishResponse, error) {
	key, err := s.key(req.GameID)
	if err != nil {
		return stopruntime.FinishResponse{}, fmt.Errorf("finish stop: %w", err)
	}
	lc := s.logCall(s.finish, s.finishLogged, req.GameID, key, nil, op)
	c := &lc.call
	c.job, c.now, c.status, c.text = req.JobID, req.NowMS, req.Status, encodeResult(req.Result)
	c.args = append(c.argv[:0], &c.job, &c.now, &c.status, &c.text)
	if err := s.batch.do(ctx, c); err != nil {
		return stopruntime.FinishResponse{}, fmt.Errorf("finish stop: run script: %w", err)
	}
	v, err := c.value()
	logErr := c.logErr()
	s.pool.putLogged(lc)
	if err != nil {
		return stopruntime.FinishResponse{}, fmt.Errorf("finish stop: run script: %w", err)
	}
	verdict, rec, _, err := parseFields(req.GameID, v, true)
	if err != nil {
		return stopruntime.FinishResponse{}, fmt.Errorf("finish stop: %w", err)
	}
	if verdict == string(stopruntime.FinishOK) {
		// The script sends nothing back: the record is Begun plus this
		// call's writes.
		if rec = req.Begun; rec.GameID != req.GameID {
			if rec, _, err = s.Get(ctx, req.GameID); err != nil {
				return stopruntime.FinishResponse{}, fmt.Errorf("finish stop: read back: %w", err)
			}
		}
		rec.Status, rec.UpdatedAtMS, rec.LastJobID, rec.LastResult = req.Status, req.NowMS, req.JobID, req.Result
		rec.StoppingJobID, rec.StoppingSinceMS = "", 0
	}
	s.entryLost(ctx, "finish stop", op, logErr)
	return stopruntime.FinishResponse{Verdict: stopruntime.FinishVerdict(verdict), Record: rec}, nil
}

// logCall is a call of a finishing script with op's log entry: in a
// sharded layout the logged script writes the entry in the record's shard's
// log; otherwise the plain script and the entry's XADD share a pipeline
// (the XADD inside the script, on a single Redis, cost Redis more CPU per
// job in rtbench than the command of its own). args may be nil and set by
// the caller (pointing into the call: args.go).
func (s *Store) logCall(plain, logged *script, gameID, key string, args []any, op stopruntime.Operation) *loggedCall {
	lc := s.pool.loggedCall()
	lc.op, lc.source = op, string(op.Source)
	c := &lc.call
	c.key, c.args = key, args
	if !s.keys.layout.Sharded {
		c.script = plain
		c.log = append(lc.buf[:0], "xadd", s.keys.operationsRef(s.keys.shard(gameID)), "maxlen", "~", s.maxLen, "*")
		c.log = lc.appendEntry(c.log)
		return lc
	}
	c.script, c.shard = logged, s.keys.shard(gameID)
	c.logKey = s.keys.operations(c.shard)
	c.entry = lc.appendEntry(lc.buf[:0])
	return lc
}

// entryLost reports a log entry that could not be written. It is not the
// transition's error: the record holds the answer, and failing the call
// for its log would turn a done job into a retry or a false failure.
func (s *Store) entryLost(ctx context.Context, what string, op stopruntime.Operation, err error) {
	if err != nil {
		s.log.WarnContext(ctx, "operation log entry not written", "op", what, "game_id", op.GameID,
			"source_ref", op.SourceRef, "outcome", op.Outcome, "err", err)
	}
}

// AppendOperation implements stopruntime.Store.
func (s *Store) AppendOperation(ctx context.Context, op stopruntime.Operation) error {
	c := s.appendCall(op)
	if err := s.batch.do(ctx, c); err != nil {
		return fmt.Errorf("append operation: %w", err)
	}
	if err := c.logErr(); err != nil {
		return fmt.Errorf("append operation: %w", err)
	}
	return nil
}

// appendCall is a call with op's log entry only: the whole XADD in the log
// of its game's shard, built at its final size (go-redis's XAddArgs would
// copy the fields again).
func (s *Store) appendCall(op stopruntime.Operation) *call {
	lc := &loggedCall{op: op, source: string(op.Source)}
	lc.log = append(lc.buf[:0], "xadd", s.keys.operationsRef(s.keys.shard(op.GameID)), "maxlen", "~", s.maxLen, "*")
	lc.log = lc.appendEntry(lc.log)
	return &lc.call
}

// Register implements stopruntime.Store. It fails with stopruntime.ErrBusy
// while the record is stopping.
func (s *Store) Register(ctx context.Context, rec stopruntime.Record) (stopruntime.Record, error) {
	key, err := s.key(rec.GameID)
	if err != nil {
		return stopruntime.Record{}, fmt.Errorf("register: %w", err)
	}
	v, err := s.register.Run(ctx, s.c, []string{key},
		rec.Status, rec.ContainerID, rec.EngineEndpoint, rec.Runtime, rec.UpdatedAtMS).Slice()
	if err != nil {
		return stopruntime.Record{}, fmt.Errorf("register: run script: %w", err)
	}
	verdict, out, err := parseReply(rec.GameID, v)
	if err != nil {
		return stopruntime.Record{}, fmt.Errorf("register: %w", err)
	}
	if verdict == "busy" {
		return out, fmt.Errorf("register: stopping by job %s: %w", out.StoppingJobID, stopruntime.ErrBusy)
	}
	return out, nil
}

// Get implements stopruntime.Store.
func (s *Store) Get(ctx context.Context, gameID string) (stopruntime.Record, bool, error) {
	key, err := s.key(gameID)
	if err != nil {
		return stopruntime.Record{}, false, fmt.Errorf("get record: %w", err)
	}
	m, err := s.c.HGetAll(ctx, key).Result()
	if err != nil {
		return stopruntime.Record{}, false, fmt.Errorf("get record: %w", err)
	}
	if m[fStatus] == "" {
		return stopruntime.Record{}, false, nil
	}
	rec, err := decodeRecord(gameID, m)
	if err != nil {
		return stopruntime.Record{}, false, fmt.Errorf("get record: %w", err)
	}
	return rec, true, nil
}

// unpackStop splits a stop script's reply for one record (packLua) into
// items: the verdict, the fields in recordFields order, and the previous
// owner; n is how many items it held. The finish's integer 1 is the
// verdict "ok". The items share the reply's memory: no allocation.
func unpackStop(v any, items *[len(recordFields) + 2]string) (verdict string, n int, err error) {
	switch v := v.(type) {
	case int64:
		if v != 1 {
			return "", 0, fmt.Errorf("script reply: integer %d", v)
		}
		items[0] = string(stopruntime.FinishOK)
		return items[0], 1, nil
	case string:
		for s := v; s != ""; n++ {
			i := strings.IndexByte(s, ':')
			if i <= 0 || n == len(items) {
				return "", 0, fmt.Errorf("script reply: malformed at item %d", n)
			}
			l, err := strconv.Atoi(s[:i])
			if err != nil || l < 0 || l > len(s)-i-1 {
				return "", 0, fmt.Errorf("script reply: malformed length at item %d", n)
			}
			items[n], s = s[i+1:i+1+l], s[i+1+l:]
		}
		if n != 1 && n != 1+len(recordFields) && n != 2+len(recordFields) {
			return "", 0, fmt.Errorf("script reply: %d items", n)
		}
		return items[0], n, nil
	default:
		return "", 0, fmt.Errorf("script reply: unexpected %T", v)
	}
}

// parseFields reads a stop script's reply for one record (unpackStop):
// the verdict, the record when the reply has its fields, and the item
// after them (begin: the previous stopping_job_id). last_result is decoded
// only when withResult.
func parseFields(gameID string, v any, withResult bool) (verdict string, rec stopruntime.Record, extra string, err error) {
	var items [len(recordFields) + 2]string
	verdict, n, err := unpackStop(v, &items)
	rec.GameID = gameID
	if err != nil || n == 1 {
		return verdict, rec, "", err
	}
	f := items[1:]
	rec.Status, rec.ContainerID, rec.EngineEndpoint, rec.Runtime = f[0], f[1], f[2], f[3]
	rec.LastJobID, rec.StoppingJobID = f[5], f[7]
	if rec.UpdatedAtMS, err = parseInt(fUpdatedAtMS, f[4]); err != nil {
		return "", rec, "", err
	}
	if rec.StoppingSinceMS, err = parseInt(fStoppingSinceMS, f[8]); err != nil {
		return "", rec, "", err
	}
	if raw := f[6]; withResult && raw != "" {
		// Decoded into a local: a pointer into rec would move the whole
		// record to the heap on every call.
		var lr stopruntime.StoredResult
		if err := json.Unmarshal([]byte(raw), &lr); err != nil {
			return "", rec, "", fmt.Errorf("record of game %s: field %s: %w", gameID, fLastResult, err)
		}
		rec.LastResult = lr
	}
	if n == 2+len(recordFields) {
		extra = items[n-1]
	}
	return verdict, rec, extra, nil
}

// parseReply reads {verdict, [flat HGETALL]} from a script.
func parseReply(gameID string, v []any) (string, stopruntime.Record, error) {
	if len(v) == 0 {
		return "", stopruntime.Record{}, errors.New("empty script reply")
	}
	verdict, ok := v[0].(string)
	if !ok {
		return "", stopruntime.Record{}, fmt.Errorf("script reply: verdict is %T", v[0])
	}
	if len(v) < 2 {
		return verdict, stopruntime.Record{GameID: gameID}, nil
	}
	flat, ok := v[1].([]any)
	if !ok || len(flat)%2 != 0 {
		return "", stopruntime.Record{}, fmt.Errorf("script reply: bad field list %T", v[1])
	}
	m := make(map[string]string, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		k, _ := flat[i].(string)
		val, _ := flat[i+1].(string)
		m[k] = val
	}
	rec, err := decodeRecord(gameID, m)
	return verdict, rec, err
}

func decodeRecord(gameID string, m map[string]string) (stopruntime.Record, error) {
	rec := stopruntime.Record{
		GameID:         gameID,
		Status:         m[fStatus],
		ContainerID:    m[fContainerID],
		EngineEndpoint: m[fEngineEndpoint],
		Runtime:        m[fRuntime],
		LastJobID:      m[fLastJobID],
		StoppingJobID:  m[fStoppingJobID],
	}
	var err error
	if rec.UpdatedAtMS, err = parseInt(fUpdatedAtMS, m[fUpdatedAtMS]); err != nil {
		return rec, err
	}
	if rec.StoppingSinceMS, err = parseInt(fStoppingSinceMS, m[fStoppingSinceMS]); err != nil {
		return rec, err
	}
	if raw := m[fLastResult]; raw != "" {
		var lr stopruntime.StoredResult
		if err := json.Unmarshal([]byte(raw), &lr); err != nil {
			return rec, fmt.Errorf("record of game %s: field %s: %w", gameID, fLastResult, err)
		}
		rec.LastResult = lr
	}
	if err := decodeStartFields(&rec, m); err != nil {
		return rec, err
	}
	return rec, nil
}

func parseInt(field, raw string) (int64, error) {
	if raw == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("field %s: %w", field, err)
	}
	return n, nil
}
