package console

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

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
	raw := r.URL.Query().Get("cursor")
	var (
		rows    []gameRow
		next    string
		scanned int
		err     error
	)
	if cc, ok := c.rdb.(*redis.ClusterClient); ok {
		node, cur, ok := parseNodeCursor(raw)
		if !ok {
			c.render(w, r, http.StatusBadRequest, "error", "cursor: want <node>:<number>")
			return
		}
		rows, next, scanned, err = c.scanClusterGames(r.Context(), cc, node, cur, status)
	} else {
		cur, perr := strconv.ParseUint(raw, 10, 64)
		if perr != nil && raw != "" {
			c.render(w, r, http.StatusBadRequest, "error", "cursor: want a number")
			return
		}
		var n uint64
		rows, n, scanned, err = c.scanGames(r.Context(), cur, status)
		if n != 0 {
			next = strconv.FormatUint(n, 10)
		}
	}
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "read the games", err)
		return
	}
	c.render(w, r, http.StatusOK, "games", gamesPage{Status: status, Statuses: statuses, Games: rows, Scanned: scanned, Cursor: next})
}

// scanGames reads one page of the records of a single Redis from cursor.
func (c *Console) scanGames(ctx context.Context, cursor uint64, status string) ([]gameRow, uint64, int, error) {
	var keys []string
	for i := 0; i < gamesScanCalls; i++ {
		ks, next, err := c.rdb.Scan(ctx, cursor, c.keys.store.RecordPattern(), gamesScanCount).Result()
		if err != nil {
			return nil, 0, 0, fmt.Errorf("scan the records: %w", err)
		}
		keys = append(keys, ks...)
		cursor = next
		if cursor == 0 || len(keys) >= gamesShow {
			break
		}
	}
	return c.readGames(ctx, keys, status), cursor, len(keys), nil
}

// scanClusterGames reads one page of the records of a Redis Cluster: SCAN
// runs on one master at a time (masters in address order), the page's
// cursor names the master and its SCAN cursor, and one page makes at most
// gamesScanCalls SCAN calls over the masters. A failover between two pages
// may change the masters, so a page may repeat or skip records then.
func (c *Console) scanClusterGames(ctx context.Context, cc *redis.ClusterClient, node int, cursor uint64, status string) ([]gameRow, string, int, error) {
	var mu sync.Mutex
	byAddr := map[string]*redis.Client{}
	if err := cc.ForEachMaster(ctx, func(_ context.Context, m *redis.Client) error {
		mu.Lock()
		byAddr[m.Options().Addr] = m
		mu.Unlock()
		return nil
	}); err != nil {
		return nil, "", 0, fmt.Errorf("list the masters: %w", err)
	}
	addrs := make([]string, 0, len(byAddr))
	for a := range byAddr {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	var keys []string
	for i := 0; i < gamesScanCalls && node < len(addrs) && len(keys) < gamesShow; i++ {
		ks, next, err := byAddr[addrs[node]].Scan(ctx, cursor, c.keys.store.RecordPattern(), gamesScanCount).Result()
		if err != nil {
			return nil, "", 0, fmt.Errorf("scan the records on %s: %w", addrs[node], err)
		}
		keys = append(keys, ks...)
		cursor = next
		if cursor == 0 {
			node++
		}
	}
	next := ""
	if node < len(addrs) {
		next = strconv.Itoa(node) + ":" + strconv.FormatUint(cursor, 10)
	}
	return c.readGames(ctx, keys, status), next, len(keys), nil
}

// parseNodeCursor reads scanClusterGames's cursor, "<node>:<scan cursor>";
// empty is the start.
func parseNodeCursor(s string) (int, uint64, bool) {
	if s == "" {
		return 0, 0, true
	}
	ns, cs, ok := strings.Cut(s, ":")
	n, err1 := strconv.Atoi(ns)
	cur, err2 := strconv.ParseUint(cs, 10, 64)
	return n, cur, ok && err1 == nil && err2 == nil && n >= 0
}

// readGames reads the record fields of the keys found, one pipelined
// HMGET each (a Cluster pipeline goes to each key's master), and keeps the
// records of this layout with the status wanted.
func (c *Console) readGames(ctx context.Context, keys []string, status string) []gameRow {
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
		id, ok := c.keys.store.GameIDOf(k)
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
	return rows
}
