package console

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
)

// openLive opens a live stream and sends its lines to the returned channel.
func openLive(ctx context.Context, t *testing.T, url string) <-chan string {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	lines := make(chan string, 4096)
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines
}

// commandCalls is how often Redis ran cmd (INFO commandstats).
func commandCalls(t *testing.T, rdb *redis.Client, cmd string) int {
	t.Helper()
	st, err := rdb.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	for _, line := range strings.Split(st, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); ok {
			n, err := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
			require.NoError(t, err)
			return n
		}
	}
	return 0
}

// However many live streams are open, new results are read once per poll:
// each stream reads Redis only to catch up when it opens.
func TestLiveStreamsShareOneReader(t *testing.T) {
	f := newFixture(t, Options{LivePoll: 10 * time.Millisecond})
	first := addResult(t, f.rdb, "1-0", "g-old", "success", "", "")
	require.NoError(t, f.rdb.ConfigResetStat(context.Background()).Err())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const streams = 8
	var all []<-chan string
	for i := 0; i < streams; i++ {
		all = append(all, openLive(ctx, t, f.srv.URL+"/jobs/live?after="+first))
	}
	want := addResult(t, f.rdb, "2-0", "g-new", "failure", "stop_failed", "x")
	var wg sync.WaitGroup
	for i, lines := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.True(t, waitLine(lines, "id: "+want, 20*time.Second), "stream %d never got the result", i)
		}()
	}
	wg.Wait()
	// Let the reader poll a while longer with every stream open.
	polls := commandCalls(t, f.rdb, "xrevrange")
	require.Eventually(t, func() bool { return commandCalls(t, f.rdb, "xrevrange") >= polls+20 }, 20*time.Second, 10*time.Millisecond)
	assert.Equal(t, streams, commandCalls(t, f.rdb, "xrange"), "one catch-up read per stream, no polling of its own")
}

// When more results arrive within one poll than a stream sends, it says
// so (event gap) and goes on with the newest.
func TestLiveStreamReportsAGap(t *testing.T) {
	f := newFixture(t, Options{LivePoll: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := openLive(ctx, t, f.srv.URL+"/jobs/live?after=0-0")
	p := f.rdb.Pipeline()
	for i := 0; i < 3*liveBatchSize; i++ {
		p.XAdd(ctx, &redis.XAddArgs{Stream: runtimejobs.JobResultsChannelPath, Values: []any{"job_id", fmt.Sprintf("%d-0", i), "game_id", "g", "outcome", "success"}})
	}
	_, err := p.Exec(ctx)
	require.NoError(t, err)
	last, err := f.rdb.XRevRangeN(ctx, runtimejobs.JobResultsChannelPath, "+", "-", 1).Result()
	require.NoError(t, err)
	assert.True(t, waitLine(lines, "event: gap", 20*time.Second))
	assert.True(t, waitLine(lines, "id: "+last[0].ID, 20*time.Second))
}

// waitLine reads lines until want or the timeout.
func waitLine(lines <-chan string, want string, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return false
			}
			if l == want {
				return true
			}
		case <-deadline:
			return false
		}
	}
}
