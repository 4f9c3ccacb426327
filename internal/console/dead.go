package console

import (
	"net/http"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/deadletters"
	"galaxy/rtmanager/internal/redisstream"
)

// deadShow is how many dead letters one page lists, newest first.
const deadShow = 50

// maxReplay bounds the letters one replay request may name.
const maxReplay = deadShow

type deadPage struct {
	Streams []jobStream
	Stream  jobStream
	Shards  int
	Total   int64
	Letters []letterView
	// Before is where the next (older) page starts; "" at the end.
	Before string
}

type letterView struct {
	ID, Reason, Error, OriginalID, Truncated string
	// Ref is ID with its shard (keys.shardRef): what a form names;
	// OriginalRef the same for OriginalID.
	Ref, OriginalRef        string
	DeliveryCount, DeadAtMS int64
	Original                []deadletters.Field
}

func (c *Console) toLetter(n int, id string, values map[string]any) letterView {
	dl := redisstream.ReadDeadLetter(values)
	return letterView{
		ID: id, Reason: dl.Reason, Error: dl.Error, OriginalID: dl.OriginalID, Truncated: dl.Truncated,
		Ref: c.keys.shardRef(n, id), OriginalRef: c.keys.shardRef(n, dl.OriginalID),
		DeliveryCount: dl.DeliveryCount, DeadAtMS: dl.DeadAtMS, Original: deadletters.OriginalFields(dl.Original),
	}
}

// streamParam is the job stream named by ?stream= (or the form field);
// the first one when absent.
func (c *Console) streamParam(r *http.Request) (jobStream, bool) {
	name := r.FormValue("stream")
	if name == "" {
		return c.keys.streams[0], true
	}
	return c.keys.stream(name)
}

// dead lists the dead letters of every shard, newest first (by id, then
// shard), deadShow a page: one pipelined XREVRANGE COUNT and XLEN per
// shard.
func (c *Console) dead(w http.ResponseWriter, r *http.Request) {
	s, ok := c.streamParam(r)
	if !ok {
		c.render(w, r, http.StatusNotFound, "error", "no job stream named "+r.FormValue("stream"))
		return
	}
	// Each shard's bound: older than (before's id, its shard).
	bn, bid := 0, ""
	if b := r.URL.Query().Get("before"); b != "" {
		if bn, bid, ok = c.keys.parseShardRef(b); !ok {
			c.render(w, r, http.StatusBadRequest, "error", "before: want a stream entry id")
			return
		}
	}
	p := c.rdb.Pipeline()
	msgs := make([]*redis.XMessageSliceCmd, len(s.DeadKeys))
	totals := make([]*redis.IntCmd, len(s.DeadKeys))
	for n, key := range s.DeadKeys {
		end := "+"
		switch {
		case bid == "":
		case n < bn:
			end = bid
		default:
			end = "(" + bid
		}
		msgs[n] = p.XRevRangeN(r.Context(), key, end, "-", deadShow+1)
		totals[n] = p.XLen(r.Context(), key)
	}
	if _, err := p.Exec(r.Context()); err != nil {
		c.fail(w, r, http.StatusBadGateway, "read "+s.Dead, err)
		return
	}
	page := deadPage{Streams: c.keys.streams, Stream: s, Shards: len(s.DeadKeys)}
	per := make([][]redis.XMessage, len(msgs))
	for n := range msgs {
		per[n] = msgs[n].Val()
		page.Total += totals[n].Val()
	}
	for i, sm := range mergeNewestFirst(per) {
		if i == deadShow {
			page.Before = page.Letters[deadShow-1].Ref
			break
		}
		page.Letters = append(page.Letters, c.toLetter(sm.n, sm.m.ID, sm.m.Values))
	}
	c.render(w, r, http.StatusOK, "dead", page)
}

type confirmPage struct {
	Stream  jobStream
	Letters []letterView
	Missing []string
}

type replayedPage struct {
	Stream   jobStream
	Replayed []replayedView
	Failed   []string
	LiveURL  string
}

// replayedView is a replayed letter; JobRef names the new job with its
// shard.
type replayedView struct {
	deadletters.Replayed
	JobRef string
}

// replay puts the selected dead letters back on the job stream of their
// shard through deadletters.Replay, the path of `rtmanagerctl dead
// replay`. Without confirm=yes it only shows what would be replayed, with
// the button that confirms. It needs the token; CrossOriginProtection
// (Handler) has already refused a cross-site POST.
func (c *Console) replay(w http.ResponseWriter, r *http.Request) {
	if !c.auth.allowed(r) {
		msg := "replays are off: rtmanager runs without --console-token"
		if c.auth.enabled() {
			msg = "replays need the console token: log in first"
		}
		c.render(w, r, http.StatusForbidden, "error", msg)
		return
	}
	if err := r.ParseForm(); err != nil {
		c.render(w, r, http.StatusBadRequest, "error", "bad form")
		return
	}
	s, ok := c.streamParam(r)
	if !ok {
		c.render(w, r, http.StatusNotFound, "error", "no job stream named "+r.PostForm.Get("stream"))
		return
	}
	refs := r.PostForm["id"]
	if only := r.PostForm.Get("only"); only != "" {
		refs = []string{only} // a row's own button: that letter alone
	}
	if len(refs) == 0 || len(refs) > maxReplay {
		c.render(w, r, http.StatusBadRequest, "error", "select between 1 and 50 dead letters")
		return
	}
	letters := make([]shardID, len(refs))
	for i, ref := range refs {
		n, id, ok := c.keys.parseShardRef(ref)
		if !ok {
			c.render(w, r, http.StatusBadRequest, "error", "not a stream entry id: "+ref)
			return
		}
		letters[i] = shardID{n, id}
	}
	if r.PostForm.Get("confirm") != "yes" {
		c.confirm(w, r, s, letters)
		return
	}
	// Results after these ids are the replayed jobs' (or later): the page
	// follows them live.
	after, err := c.hub.newest(r.Context())
	if err != nil {
		after = startCursor(c.keys.shards())
	}
	page := replayedPage{Stream: s, LiveURL: liveURL(after.String(), resultFilter{})}
	for _, l := range letters {
		rep, err := deadletters.Replay(r.Context(), c.rdb, s.replayPair(l.n), l.id)
		if err != nil {
			page.Failed = append(page.Failed, err.Error())
			continue
		}
		c.log.Info("console: dead letter replayed", "dead_id", rep.DeadID, "job_id", rep.JobID, "stream", s.JobKeys[l.n])
		page.Replayed = append(page.Replayed, replayedView{Replayed: rep, JobRef: c.keys.shardRef(l.n, rep.JobID)})
	}
	status := http.StatusOK
	if len(page.Replayed) == 0 {
		status = http.StatusConflict
	}
	c.render(w, r, status, "replayed", page)
}

// shardID is entry id of shard n.
type shardID struct {
	n  int
	id string
}

// confirm shows the letters a replay would put back: one pipelined
// XRANGE id id per letter, on its shard's dead stream.
func (c *Console) confirm(w http.ResponseWriter, r *http.Request, s jobStream, letters []shardID) {
	p := c.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(letters))
	for i, l := range letters {
		cmds[i] = p.XRangeN(r.Context(), s.DeadKeys[l.n], l.id, l.id, 1)
	}
	if _, err := p.Exec(r.Context()); err != nil {
		c.fail(w, r, http.StatusBadGateway, "read "+s.Dead, err)
		return
	}
	page := confirmPage{Stream: s}
	for i, cmd := range cmds {
		l := letters[i]
		if m := cmd.Val(); len(m) == 1 {
			page.Letters = append(page.Letters, c.toLetter(l.n, m[0].ID, m[0].Values))
		} else {
			page.Missing = append(page.Missing, c.keys.shardRef(l.n, l.id))
		}
	}
	c.render(w, r, http.StatusOK, "confirm", page)
}
