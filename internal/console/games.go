package console

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The games list walks the record keys with SCAN, a page at a time: one
// page makes at most gamesScanCalls SCAN calls of gamesScanCount keys each
// and reads the keys found with one pipelined HMGET, so its cost is bounded
// whatever the number of games. A status filter applies to the page's
// records; "next" goes on from the SCAN cursor.

const (
	gamesScanCount = 500
	gamesScanCalls = 4
	gamesShow      = 100
)

// statuses are the record statuses (docs/persistence.md), for the filter.
var statuses = []string{"starting", "running", "unhealthy", "stopping", "stopped", "exited", "removed", "failed"}

type gamesPage struct {
	Status   string
	Statuses []string
	Games    []gameRow
	Cursor   string // where the next page starts; "" at the end
	Scanned  int
}

type gameRow struct {
	GameID, Status, Runtime, Engine, ContainerID, Endpoint, UpdatedAtMS string
}

func (c *Console) games(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	cursor, err := strconv.ParseUint(r.URL.Query().Get("cursor"), 10, 64)
	if err != nil && r.URL.Query().Get("cursor") != "" {
		c.render(w, r, http.StatusBadRequest, "error", "cursor: want a number")
		return
	}
	rows, next, scanned, err := c.scanGames(r.Context(), cursor, status)
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "read the games", err)
		return
	}
	page := gamesPage{Status: status, Statuses: statuses, Games: rows, Scanned: scanned}
	if next != 0 {
		page.Cursor = strconv.FormatUint(next, 10)
	}
	c.render(w, r, http.StatusOK, "games", page)
}

func (c *Console) scanGames(ctx context.Context, cursor uint64, status string) ([]gameRow, uint64, int, error) {
	var keys []string
	for i := 0; i < gamesScanCalls; i++ {
		ks, next, err := c.rdb.Scan(ctx, cursor, c.keys.recordPattern(), gamesScanCount).Result()
		if err != nil {
			return nil, 0, 0, fmt.Errorf("scan the records: %w", err)
		}
		keys = append(keys, ks...)
		cursor = next
		if cursor == 0 || len(keys) >= gamesShow {
			break
		}
	}
	p := c.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = p.HMGet(ctx, k, "status", "runtime", "engine", "container_id", "engine_endpoint", "updated_at_ms")
	}
	if len(keys) > 0 {
		_, _ = p.Exec(ctx) // a key of another type fails alone
	}
	var rows []gameRow
	for i, k := range keys {
		id, ok := c.keys.gameOf(k)
		if !ok || cmds[i].Err() != nil {
			continue
		}
		v := cmds[i].Val()
		s := func(j int) string { x, _ := v[j].(string); return x }
		row := gameRow{GameID: id, Status: s(0), Runtime: s(1), Engine: s(2), ContainerID: s(3), Endpoint: s(4), UpdatedAtMS: s(5)}
		if row.Status == "" || (status != "" && row.Status != status) {
			continue // a hash without status is no record
		}
		rows = append(rows, row)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].GameID < rows[j].GameID })
	return rows, cursor, len(keys), nil
}
