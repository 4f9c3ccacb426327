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
	Total   int64
	Letters []letterView
	// Before is where the next (older) page starts; "" at the end.
	Before string
}

type letterView struct {
	ID, Reason, Error, OriginalID, Truncated string
	DeliveryCount, DeadAtMS                  int64
	Original                                 []deadletters.Field
}

func toLetter(id string, values map[string]any) letterView {
	dl := redisstream.ReadDeadLetter(values)
	return letterView{
		ID: id, Reason: dl.Reason, Error: dl.Error, OriginalID: dl.OriginalID, Truncated: dl.Truncated,
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

func (c *Console) dead(w http.ResponseWriter, r *http.Request) {
	s, ok := c.streamParam(r)
	if !ok {
		c.render(w, r, http.StatusNotFound, "error", "no job stream named "+r.FormValue("stream"))
		return
	}
	end := "+"
	if b := r.URL.Query().Get("before"); b != "" {
		if !entryID.MatchString(b) {
			c.render(w, r, http.StatusBadRequest, "error", "before: want a stream entry id")
			return
		}
		end = "(" + b
	}
	p := c.rdb.Pipeline()
	msgs := p.XRevRangeN(r.Context(), s.Dead, end, "-", deadShow+1)
	total := p.XLen(r.Context(), s.Dead)
	if _, err := p.Exec(r.Context()); err != nil {
		c.fail(w, r, http.StatusBadGateway, "read "+s.Dead, err)
		return
	}
	page := deadPage{Streams: c.keys.streams, Stream: s, Total: total.Val()}
	for i, m := range msgs.Val() {
		if i == deadShow {
			page.Before = page.Letters[deadShow-1].ID
			break
		}
		page.Letters = append(page.Letters, toLetter(m.ID, m.Values))
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
	Replayed []deadletters.Replayed
	Failed   []string
	LiveURL  string
}

// replay puts the selected dead letters back on their job stream through
// deadletters.Replay, the path of `rtmanagerctl dead replay`. Without
// confirm=yes it only shows what would be replayed, with the button that
// confirms. It needs the token; CrossOriginProtection (Handler) has already
// refused a cross-site POST.
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
	ids := r.PostForm["id"]
	if only := r.PostForm.Get("only"); only != "" {
		ids = []string{only} // a row's own button: that letter alone
	}
	if len(ids) == 0 || len(ids) > maxReplay {
		c.render(w, r, http.StatusBadRequest, "error", "select between 1 and 50 dead letters")
		return
	}
	for _, id := range ids {
		if !entryID.MatchString(id) {
			c.render(w, r, http.StatusBadRequest, "error", "not a stream entry id: "+id)
			return
		}
	}
	if r.PostForm.Get("confirm") != "yes" {
		c.confirm(w, r, s, ids)
		return
	}
	// Results after this id are the replayed jobs' (or later): the page
	// follows them live.
	before, _ := c.rdb.XRevRangeN(r.Context(), c.keys.results, "+", "-", 1).Result()
	after := ""
	if len(before) == 1 {
		after = before[0].ID
	}
	page := replayedPage{Stream: s, LiveURL: liveURL(after, resultFilter{})}
	for _, id := range ids {
		rep, err := deadletters.Replay(r.Context(), c.rdb, s.replayPair(), id)
		if err != nil {
			page.Failed = append(page.Failed, err.Error())
			continue
		}
		c.log.Info("console: dead letter replayed", "dead_id", rep.DeadID, "job_id", rep.JobID, "stream", s.Jobs)
		page.Replayed = append(page.Replayed, rep)
	}
	status := http.StatusOK
	if len(page.Replayed) == 0 {
		status = http.StatusConflict
	}
	c.render(w, r, status, "replayed", page)
}

// confirm shows the letters a replay would put back: one pipelined
// XRANGE id id per letter.
func (c *Console) confirm(w http.ResponseWriter, r *http.Request, s jobStream, ids []string) {
	p := c.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(ids))
	for i, id := range ids {
		cmds[i] = p.XRangeN(r.Context(), s.Dead, id, id, 1)
	}
	if _, err := p.Exec(r.Context()); err != nil {
		c.fail(w, r, http.StatusBadGateway, "read "+s.Dead, err)
		return
	}
	page := confirmPage{Stream: s}
	for i, cmd := range cmds {
		if m := cmd.Val(); len(m) == 1 {
			page.Letters = append(page.Letters, toLetter(m[0].ID, m[0].Values))
		} else {
			page.Missing = append(page.Missing, ids[i])
		}
	}
	c.render(w, r, http.StatusOK, "confirm", page)
}
