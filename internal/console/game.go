package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/deadletters"
)

// gameScan bounds how many of the latest results, operations and runtime
// events the game page filters for the game.
const (
	gameScan = 500
	gameShow = 20
)

type gamePage struct {
	GameID          string
	Found           bool
	Status          string
	Fields          []deadletters.Field
	LastResult      map[string]any
	LastStartResult map[string]any
	Results         []resultView
	Operations      []opView
	Events          []eventView
	Scanned         int
}

type opView struct {
	ID     string
	Fields []deadletters.Field
	Values map[string]string
}

type eventView struct {
	ID     string
	Fields []deadletters.Field
}

func (c *Console) game(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !c.gameID.MatchString(id) {
		c.render(w, r, http.StatusNotFound, "error", "not a game id: "+id)
		return
	}
	page, err := c.readGame(r.Context(), id)
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "read the game", err)
		return
	}
	status := http.StatusOK
	if !page.Found {
		status = http.StatusNotFound
	}
	c.render(w, r, status, "game", page)
}

// readGame reads the record (HGETALL of one hash) and filters the latest
// gameScan entries of the results, the operation log and the runtime
// events of the game's shard, each a bounded chunked walk (scan.go).
func (c *Console) readGame(ctx context.Context, id string) (gamePage, error) {
	page := gamePage{GameID: id, Scanned: gameScan}
	n := c.keys.shardOf(id)
	fields, err := c.rdb.HGetAll(ctx, c.keys.record(id)).Result()
	if err != nil {
		return page, fmt.Errorf("read the record: %w", err)
	}
	page.Status = fields["status"]
	page.Found = page.Status != ""
	for k, v := range fields {
		switch k {
		case "last_result":
			page.LastResult = parseJSONObject(v)
		case "last_start_result":
			page.LastStartResult = parseJSONObject(v)
		}
		page.Fields = append(page.Fields, deadletters.Field{Name: k, Value: v})
	}
	sort.Slice(page.Fields, func(i, j int) bool { return page.Fields[i].Name < page.Fields[j].Name })
	ofGame := func(m redis.XMessage) bool { return str(m.Values, "game_id") == id }
	walk := func(stream string) ([]redis.XMessage, error) {
		sc, err := c.scan(ctx, scan{stream: stream, backward: true, budget: gameScan, want: gameShow, match: ofGame})
		return sc.matches, err
	}
	res, err := walk(c.keys.results[n])
	if err != nil {
		return page, err
	}
	for _, m := range res {
		page.Results = append(page.Results, c.shardResult(n, m))
	}
	ops, err := walk(c.keys.opLogs[n])
	if err != nil {
		return page, err
	}
	for _, m := range ops {
		vals := map[string]string{}
		for k, v := range m.Values {
			vals[k], _ = v.(string)
		}
		page.Operations = append(page.Operations, opView{ID: m.ID, Fields: fieldsOf(m.Values), Values: vals})
	}
	evs, err := walk(c.keys.events[n])
	if err != nil {
		return page, err
	}
	for _, m := range evs {
		page.Events = append(page.Events, eventView{ID: m.ID, Fields: fieldsOf(m.Values)})
	}
	return page, nil
}

// parseJSONObject reads a stored JSON answer; nil when it is not one.
func parseJSONObject(s string) map[string]any {
	var m map[string]any
	if json.Unmarshal([]byte(s), &m) != nil {
		return nil
	}
	return m
}
