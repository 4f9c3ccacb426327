package runtimestore

import "fmt"

// In the sharded layout a record and its shard's operation log share a
// slot, so the finishing scripts append the log entry themselves: one round
// trip, and the record's change and its entry are one atomic step. The
// entry is written whatever the record's verdict (a finish that lost its
// stop still logs what its driver did), but not when the record's call
// failed. A log that cannot take the entry (a key of the wrong type) never
// fails the record's transition: the record is written and the entry's
// error comes back on its own.

// loggedLoop runs a per-record function fn, which takes a record key and
// nargs arguments, over every record, and appends each record's entry.
// KEYS[1] the shard's operation log, KEYS[2..] the records; ARGV[1] the
// log's MAXLEN (0: unbounded), then per record its nargs arguments, the
// count n of its entry's field values and those n values (n = 0: no
// entry). Returns per record {the function's reply, 1 when the entry was
// written (0 when none; not its id, which nobody reads and the client would
// allocate) or an error}. Every argument and the log's type are checked before
// the first write; a malformed list fails the whole call with nothing
// written.
const loggedLoop = `
local log, maxlen = KEYS[1], ARGV[1]
local at, a = {}, 2
for i = 2, #KEYS do
  local n = tonumber(ARGV[a + nargs])
  if not n or n < 0 or n % 2 ~= 0 or a + nargs + n > #ARGV then
    return redis.error_reply('ERR logged script: bad arguments of record ' .. (i - 1))
  end
  at[i - 1] = a
  a = a + nargs + 1 + n
end
if a ~= #ARGV + 1 or not tonumber(maxlen) then
  return redis.error_reply('ERR logged script: bad arguments')
end
local t = redis.call('TYPE', log)['ok']
local logerr
if t ~= 'none' and t ~= 'stream' then
  logerr = 'WRONGTYPE operation log ' .. log .. ' holds a ' .. t
end
local out = {}
for i = 2, #KEYS do
  local s = at[i - 1]
  local ok, res = pcall(fn, KEYS[i], unpack(ARGV, s, s + nargs - 1))
  if not ok and not (type(res) == 'table' and res.err) then res = {err = tostring(res)} end
  local n, entry = tonumber(ARGV[s + nargs]), 0
  if type(res) == 'table' and res.err then
    entry = {err = 'ERR operation log: no entry, the record failed'}
  elseif logerr then
    entry = {err = logerr}
  elseif n > 0 then
    local xa = {'XADD', log}
    if tonumber(maxlen) > 0 then xa[3], xa[4], xa[5] = 'MAXLEN', '~', maxlen end
    xa[#xa + 1] = '*'
    for j = s + nargs + 1, s + nargs + n do xa[#xa + 1] = ARGV[j] end
    entry = redis.pcall(unpack(xa))
    if type(entry) ~= 'table' or not entry.err then entry = 1 end
  end
  out[i - 1] = {res, entry}
end
return out
`

// loggedCommand is the EVALSHA of a logged script's group; every call of
// a group has the same shard, so the same log.
func (g *scriptGroup) loggedCommand(maxLen any) []any {
	n := 0
	for _, c := range g.calls {
		n += len(c.args) + 1 + len(c.entry)
	}
	cmd := make([]any, 0, 5+len(g.calls)+n)
	cmd = append(cmd, "evalsha", g.script.Hash(), 1+len(g.calls), &g.calls[0].logKey)
	for _, c := range g.calls {
		cmd = append(cmd, &c.key)
	}
	cmd = append(cmd, maxLen)
	for _, c := range g.calls {
		cmd = append(cmd, c.args...)
		cmd = append(cmd, len(c.entry))
		cmd = append(cmd, c.entry...)
	}
	return cmd
}

// splitLogged reads one record's reply of a logged script: the record's
// reply (as a plain script's) and the entry's error.
func splitLogged(v any) (reply any, entryErr error) {
	if err, ok := v.(error); ok {
		return err, nil
	}
	pair, ok := v.([]any)
	if !ok || len(pair) != 2 {
		return fmt.Errorf("logged script reply: unexpected %T", v), nil
	}
	if err, ok := pair[1].(error); ok {
		entryErr = err
	}
	return pair[0], entryErr
}
