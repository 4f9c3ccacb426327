package stopjobs_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/runtimes/none"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/service"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Huge field values are clipped in log lines (with a marker and their
// length): a hostile producer cannot make one job write 130 KB of log.
func TestLoggedJobFieldsAreBounded(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	doc, err := api.Load()
	require.NoError(t, err)
	svc, err := stopruntime.New(runtimestore.New(rdb, runtimestore.Options{}), map[string]stopruntime.Driver{"none": none.Driver{}}, stopruntime.Options{})
	require.NoError(t, err)
	logs := &lockedBuffer{}
	run, err := service.Start(context.Background(), rdb, service.Options{
		Stopper: svc, Workers: 2, Contract: doc,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Broker: redisstream.Options{Block: 100 * time.Millisecond},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = run.Close(ctx)
	})
	e := &env{rdb: rdb, svc: svc, doc: doc}

	// 65 KB each, just within the 64 KiB field limit: the handler sees them.
	huge := strings.Repeat("g", 65000)
	hugeReason := strings.Repeat("r", 65000)
	e.add(t, "game_id", huge, "reason", hugeReason)
	e.register(t, "g-ok")
	e.add(t, "game_id", "g-ok", "reason", strings.Repeat("x", 10*1024)) // invalid reason: answered
	e.add(t, "game_id", strings.Repeat("h", 1000), "reason", "game_finished")
	require.Eventually(t, func() bool {
		n, _ := rdb.XLen(context.Background(), dead).Result()
		return n >= 3
	}, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return strings.Count(logs.String(), `"stop job`) >= 3 }, 20*time.Second, 10*time.Millisecond, logs.String())

	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		assert.LessOrEqual(t, len(line), 4096, "log line of %d bytes: %.300s…", len(line), line)
	}
	assert.Contains(t, logs.String(), "…(65000 bytes)")
}
