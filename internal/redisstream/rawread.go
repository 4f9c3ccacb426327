package redisstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// go-redis returns an entry's fields as a map, so an entry that names a
// field twice (`game_id g2 … game_id g3`) reaches the codec with the last
// value only: a job for another game than the one a reader of the stream
// may see. The functions here read entries from the raw reply instead,
// keeping the map go-redis would build and telling which fields appeared
// more than once. The check is free for ordinary entries: it runs only when
// the map ends up smaller than the number of pairs.

// fieldDup is a field named more than once in one entry.
type fieldDup struct {
	name   string
	n      int  // how many times
	differ bool // not all values equal: no value can be trusted
}

// entryDups are the duplicate fields of entries, by entry id (nil when
// none).
type entryDups map[string][]fieldDup

// readGroupRaw is XREADGROUP with duplicate fields found. block must stay
// below the client's read timeout (the raw command does not extend it as
// XReadGroup does); see blockFor. It returns redis.Nil when the block
// ended with nothing read.
func readGroupRaw(ctx context.Context, rdb redis.UniversalClient, a *redis.XReadGroupArgs) ([]redis.XStream, entryDups, error) {
	each, err := readGroupRawEach(ctx, rdb, a)
	if err != nil {
		return nil, nil, err
	}
	return mergeStreams(each)
}

// streamRead is one stream's part of a read reply, with the duplicate
// fields of its entries: two streams (two shards) can hold the same id.
type streamRead struct {
	redis.XStream
	dups entryDups
}

// readGroupRawEach is readGroupRaw for several streams, each with its own
// duplicates.
func readGroupRawEach(ctx context.Context, rdb redis.UniversalClient, a *redis.XReadGroupArgs) ([]streamRead, error) {
	args := make([]any, 0, 10+len(a.Streams))
	args = append(args, "xreadgroup", "group", a.Group, a.Consumer)
	if a.Count > 0 {
		args = append(args, "count", a.Count)
	}
	if a.Block >= 0 {
		args = append(args, "block", int64(a.Block/time.Millisecond))
	}
	if a.NoAck {
		args = append(args, "noack")
	}
	args = append(args, "streams")
	for _, s := range a.Streams {
		args = append(args, s)
	}
	raw := redis.NewRawCmd(ctx, args...)
	_ = rdb.Process(ctx, raw)
	b, err := raw.Result()
	if err != nil {
		return nil, err
	}
	out, err := parseReadRaw(b)
	if !errors.Is(err, errReplyIsError) {
		return out, err
	}
	// A Redis error (NOGROUP, MOVED, LOADING…): the command did nothing.
	// Sent again the usual way, go-redis handles it as for any command.
	res, err := rdb.Do(ctx, args...).Result()
	if err != nil {
		return nil, err
	}
	return parseStreamsEach(res)
}

// blockFor is the longest XREADGROUP BLOCK readGroupRaw may use on rdb: a
// margin under the client's read timeout.
func blockFor(rdb redis.UniversalClient, want time.Duration) time.Duration {
	rt := 3 * time.Second // go-redis's default
	switch c := rdb.(type) {
	case *redis.Client:
		rt = c.Options().ReadTimeout
	case *redis.ClusterClient:
		rt = c.Options().ReadTimeout
	}
	if rt <= 0 { // -1: no timeout; -2: no deadline set at all
		return want
	}
	return max(min(want, rt-rt/4), time.Millisecond)
}

// mergeStreams is the streams of a reply with their duplicates by entry
// id, for a read of one stream.
func mergeStreams(each []streamRead) ([]redis.XStream, entryDups, error) {
	var out []redis.XStream
	var dups entryDups
	for _, s := range each {
		for id, f := range s.dups {
			if dups == nil {
				dups = entryDups{}
			}
			dups[id] = f
		}
		out = append(out, s.XStream)
	}
	return out, dups, nil
}

// parseStreamsEach reads an XREAD/XREADGROUP reply: RESP2 (an array of
// [stream, entries]) or RESP3 (a map from stream to entries), each
// stream's duplicates apart.
func parseStreamsEach(res any) ([]streamRead, error) {
	var out []streamRead
	add := func(name any, entries any) error {
		s, ok := name.(string)
		if !ok {
			return fmt.Errorf("read reply: stream name is %T", name)
		}
		list, ok := entries.([]any)
		if !ok {
			return fmt.Errorf("read reply: entries of %s are %T", s, entries)
		}
		msgs, d, err := parseEntries(list)
		if err != nil {
			return err
		}
		out = append(out, streamRead{XStream: redis.XStream{Stream: s, Messages: msgs}, dups: d})
		return nil
	}
	switch v := res.(type) {
	case []any:
		for _, e := range v {
			pair, ok := e.([]any)
			if !ok || len(pair) != 2 {
				return nil, fmt.Errorf("read reply: stream item is %T", e)
			}
			if err := add(pair[0], pair[1]); err != nil {
				return nil, err
			}
		}
	case map[any]any:
		for k, e := range v {
			if err := add(k, e); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("read reply: unexpected %T", res)
	}
	return out, nil
}

// parseEntries reads a list of [id, [field, value, …]] entries (the
// entries of a read reply, XRANGE, or XAUTOCLAIM's second item). A deleted
// entry (nil fields, from a claim) has nil Values.
func parseEntries(list []any) ([]redis.XMessage, entryDups, error) {
	msgs := make([]redis.XMessage, 0, len(list))
	var dups entryDups
	for _, e := range list {
		item, ok := e.([]any)
		if !ok || len(item) < 2 {
			return nil, nil, fmt.Errorf("read reply: entry is %T", e)
		}
		id, ok := item[0].(string)
		if !ok {
			return nil, nil, fmt.Errorf("read reply: entry id is %T", item[0])
		}
		m := redis.XMessage{ID: id}
		if item[1] != nil {
			flat, ok := item[1].([]any)
			if !ok || len(flat)%2 != 0 {
				return nil, nil, fmt.Errorf("read reply: fields of %s are %T", id, item[1])
			}
			m.Values = make(map[string]any, len(flat)/2)
			for i := 0; i < len(flat); i += 2 {
				k, _ := flat[i].(string)
				m.Values[k] = flat[i+1]
			}
			if len(m.Values) != len(flat)/2 {
				if dups == nil {
					dups = entryDups{}
				}
				dups[id] = duplicates(flat)
			}
		}
		msgs = append(msgs, m)
	}
	return msgs, dups, nil
}

// duplicates lists the fields named more than once in a flat field list,
// in order of first appearance.
func duplicates(flat []any) []fieldDup {
	type seen struct {
		first any
		i     int // index in out, -1 while seen once
	}
	names := make(map[string]*seen, len(flat)/2)
	var out []fieldDup
	for i := 0; i < len(flat); i += 2 {
		k, _ := flat[i].(string)
		s := names[k]
		if s == nil {
			names[k] = &seen{first: flat[i+1], i: -1}
			continue
		}
		if s.i < 0 {
			s.i = len(out)
			out = append(out, fieldDup{name: k, n: 1})
		}
		d := &out[s.i]
		d.n++
		if flat[i+1] != s.first {
			d.differ = true
		}
	}
	return out
}

// autoClaimRaw is XAUTOCLAIM with duplicate fields found; it returns the
// claimed entries and the start of the next call.
func autoClaimRaw(ctx context.Context, rdb redis.UniversalClient, a *redis.XAutoClaimArgs) ([]redis.XMessage, string, entryDups, error) {
	args := []any{"xautoclaim", a.Stream, a.Group, a.Consumer, int64(a.MinIdle / time.Millisecond), a.Start}
	if a.Count > 0 {
		args = append(args, "count", a.Count)
	}
	res, err := rdb.Do(ctx, args...).Slice()
	if err != nil {
		return nil, "", nil, err
	}
	if len(res) < 2 {
		return nil, "", nil, fmt.Errorf("xautoclaim reply: %d items", len(res))
	}
	next, _ := res[0].(string)
	list, ok := res[1].([]any)
	if !ok {
		return nil, "", nil, fmt.Errorf("xautoclaim reply: entries are %T", res[1])
	}
	msgs, dups, err := parseEntries(list)
	return msgs, next, dups, err
}
