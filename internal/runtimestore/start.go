package runtimestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"galaxy/rtmanager/internal/stopruntime"
)

// The start transitions (internal/startruntime), in the style of the stop
// scripts: one script call over any number of records, each decided on its
// own; every read and check before the first write, since Redis does not
// roll back a script that fails halfway.

// startFields is the order of the fields the start scripts return.
var startFields = [...]string{fStatus, fContainerID, fEngineEndpoint, fRuntime, fUpdatedAtMS,
	fEngine, fStartingJobID, fStartingSinceMS, fLastStartJobID, fLastStartResult, fStoppingJobID}

const (
	// KEYS[i] record i; ARGV[4i-3..4i] its job, now_ms, engine, takeover_ms.
	// Verdicts: done (this job was answered: last_start_result), replay
	// (running), busy (stopping, or starting by another recent job),
	// started / resumed (starting by this job already) / taken_over (a
	// stale start of another job): the record is now starting by this job.
	beginStartLua = `
local function begin(key, job, now, engine, takeover)
  local r = redis.call('HMGET', key, 'status', 'container_id', 'engine_endpoint', 'runtime', 'updated_at_ms', 'engine', 'starting_job_id', 'starting_since_ms', 'last_start_job_id', 'last_start_result', 'stopping_job_id')
  if not tonumber(now) or not tonumber(takeover) or job == '' or engine == '' then
    return {err = 'begin start: bad arguments'}
  end
  local status = r[1]
  if r[9] == job then return {'done', r} end
  if status == 'running' or status == 'unhealthy' then return {'replay', r} end
  if status == 'stopping' then return {'busy', r} end
  local verdict = 'started'
  if status == 'starting' then
    if r[7] == job then
      verdict = 'resumed'
    elseif tonumber(now) - (tonumber(r[8]) or 0) >= tonumber(takeover) then
      verdict = 'taken_over'
    else
      return {'busy', r}
    end
  end
  redis.call('HSET', key, 'status', 'starting', 'starting_job_id', job, 'starting_since_ms', now, 'engine', engine, 'updated_at_ms', now)
  r[1], r[5], r[6], r[8] = 'starting', now, engine, now
  local prev = r[7] or ''
  r[7] = job
  return {verdict, r, prev}
end
local out = {}
for i = 1, #KEYS do
  local ok, res = pcall(begin, KEYS[i], ARGV[4 * i - 3], ARGV[4 * i - 2], ARGV[4 * i - 1], ARGV[4 * i])
  if ok or (type(res) == 'table' and res.err) then out[i] = res else out[i] = {err = tostring(res)} end
end
return out
`

	// KEYS[i] record i; ARGV[7i-6..7i] its job, now_ms, final status
	// (running or removed), container_id, engine_endpoint, runtime,
	// last_start_result JSON. Written only while starting by this job:
	// {'ok'}; else {'done' | 'lost', fields} or {'not_found'}.
	finishStartLua = finishStartFn + `
local out = {}
for i = 1, #KEYS do
  local a = 7 * i
  local ok, res = pcall(finish, KEYS[i], ARGV[a - 6], ARGV[a - 5], ARGV[a - 4], ARGV[a - 3], ARGV[a - 2], ARGV[a - 1], ARGV[a])
  if ok or (type(res) == 'table' and res.err) then out[i] = res else out[i] = {err = tostring(res)} end
end
return out
`
	// finishStartLua that also appends each record's log entry (loggedLoop).
	finishStartLoggedLua = finishStartFn + "local fn, nargs = finish, 7\n" + loggedLoop

	// finish of one record: see finishStartLua.
	finishStartFn = `
local function finish(key, job, now, status, cid, endpoint, runtime, result)
  if (status ~= 'running' and status ~= 'removed') or not tonumber(now) or job == '' then
    return {err = 'finish start: bad arguments'}
  end
  local r = redis.call('HMGET', key, 'status', 'container_id', 'engine_endpoint', 'runtime', 'updated_at_ms', 'engine', 'starting_job_id', 'starting_since_ms', 'last_start_job_id', 'last_start_result', 'stopping_job_id')
  if not r[1] then return {'not_found'} end
  if r[1] ~= 'starting' or r[7] ~= job then
    if r[9] == job then return {'done', r} end
    return {'lost', r}
  end
  redis.call('HSET', key, 'status', status, 'container_id', cid, 'engine_endpoint', endpoint, 'runtime', runtime, 'updated_at_ms', now, 'last_start_job_id', job, 'last_start_result', result)
  redis.call('HDEL', key, 'starting_job_id', 'starting_since_ms', 'exit_code', 'oom_killed', 'finished_at_ms', 'failure_reason', 'unhealthy_since_ms')
  return {'ok'}
end
`
)

type startScripts struct{ begin, finish, finishLogged *script }

func newStartScripts() startScripts {
	return startScripts{begin: newScript(beginStartLua), finish: newScript(finishStartLua),
		finishLogged: newLoggedScript(finishStartLoggedLua)}
}

// StartVerdict is what a start script decided (internal/startruntime names
// them; the store passes them on).
type StartVerdict string

// Start verdicts.
const (
	StartDone      StartVerdict = "done"
	StartReplay    StartVerdict = "replay"
	StartBusy      StartVerdict = "busy"
	StartStarted   StartVerdict = "started"
	StartResumed   StartVerdict = "resumed"
	StartTakenOver StartVerdict = "taken_over"
	StartOK        StartVerdict = "ok"
	StartLost      StartVerdict = "lost"
	StartNotFound  StartVerdict = "not_found"
)

// BeginStart moves the game's record to starting for job (see
// beginStartLua). prevJob is the start job that owned a taken-over start.
func (s *Store) BeginStart(ctx context.Context, gameID, job, engine string, nowMS, takeoverMS int64) (v StartVerdict, rec stopruntime.Record, prevJob string, err error) {
	key, err := s.key(gameID)
	if err != nil {
		return "", rec, "", fmt.Errorf("begin start: %w", err)
	}
	c := &call{script: s.start.begin, key: key, args: []any{job, nowMS, engine, takeoverMS}, shard: s.keys.shard(gameID)}
	if err := s.batch.do(ctx, c); err != nil {
		return "", rec, "", fmt.Errorf("begin start: run script: %w", err)
	}
	reply, err := c.result()
	if err != nil {
		return "", rec, "", fmt.Errorf("begin start: run script: %w", err)
	}
	verdict, rec, err := parseStartFields(gameID, reply)
	if err != nil {
		return "", rec, "", fmt.Errorf("begin start: %w", err)
	}
	if len(reply) > 2 {
		prevJob, _ = reply[2].(string)
	}
	return StartVerdict(verdict), rec, prevJob, nil
}

// FinishStart ends the start owned by job with the final status (running
// or removed) and the answer, and appends op to the operation log in the
// same round trip (Store.logCall). An entry that could not be written is
// reported to the logger, not returned: the record is final.
func (s *Store) FinishStart(ctx context.Context, gameID, job string, nowMS int64, status string, res stopruntime.StoredResult, runtime string, op stopruntime.Operation) (StartVerdict, stopruntime.Record, error) {
	key, err := s.key(gameID)
	if err != nil {
		return "", stopruntime.Record{}, fmt.Errorf("finish start: %w", err)
	}
	raw := encodeResult(res)
	c := &s.logCall(s.start.finish, s.start.finishLogged, gameID, key,
		[]any{job, nowMS, status, res.ContainerID, res.EngineEndpoint, runtime, raw}, op).call
	if err := s.batch.do(ctx, c); err != nil {
		return "", stopruntime.Record{}, fmt.Errorf("finish start: run script: %w", err)
	}
	reply, err := c.result()
	if err != nil {
		return "", stopruntime.Record{}, fmt.Errorf("finish start: run script: %w", err)
	}
	verdict, rec, err := parseStartFields(gameID, reply)
	if err != nil {
		return "", rec, fmt.Errorf("finish start: %w", err)
	}
	s.entryLost(ctx, "finish start", op, c.logErr())
	return StartVerdict(verdict), rec, nil
}

// parseStartFields reads {verdict, [fields in startFields order]}.
func parseStartFields(gameID string, v []any) (string, stopruntime.Record, error) {
	rec := stopruntime.Record{GameID: gameID}
	if len(v) == 0 {
		return "", rec, errors.New("empty script reply")
	}
	verdict, ok := v[0].(string)
	if !ok {
		return "", rec, fmt.Errorf("script reply: verdict is %T", v[0])
	}
	if len(v) < 2 {
		return verdict, rec, nil
	}
	f, ok := v[1].([]any)
	if !ok || len(f) != len(startFields) {
		return "", rec, fmt.Errorf("script reply: bad field list %T", v[1])
	}
	m := make(map[string]string, len(startFields))
	for i, name := range startFields {
		if s, ok := f[i].(string); ok {
			m[name] = s
		}
	}
	rec, err := decodeRecord(gameID, m)
	return verdict, rec, err
}

// decodeStartFields reads the start fields of a record hash.
func decodeStartFields(rec *stopruntime.Record, m map[string]string) error {
	rec.Engine, rec.StartingJobID, rec.LastStartJobID = m[fEngine], m[fStartingJobID], m[fLastStartJobID]
	var err error
	if rec.StartingSinceMS, err = parseInt(fStartingSinceMS, m[fStartingSinceMS]); err != nil {
		return err
	}
	if err := decodeWatchFields(rec, m); err != nil {
		return err
	}
	if raw := m[fLastStartResult]; raw != "" {
		var lr stopruntime.StoredResult
		if err := json.Unmarshal([]byte(raw), &lr); err != nil {
			return fmt.Errorf("record of game %s: field %s: %w", rec.GameID, fLastStartResult, err)
		}
		rec.LastStartResult = lr
	}
	return nil
}
