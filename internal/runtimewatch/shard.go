package runtimewatch

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Sharder says which games this replica watches, so replicas do not all
// probe and inspect every game. A share that is briefly stale (a replica
// joined or died since the last Refresh) costs double work or a delay of
// one reconciliation, never a second event: the store's script decides.
type Sharder interface {
	Refresh(ctx context.Context) error
	Mine(gameID string) bool
}

// GroupShard splits the games over the live consumers of the job stream's
// consumer group (every rtmanager replica reads it): the consumers seen
// within Live, sorted by name; a game is this replica's when the FNV-1a
// hash of its id modulo their number is this consumer's place.
type GroupShard struct {
	RDB           redis.UniversalClient
	Stream, Group string
	Self          string        // this replica's consumer name
	Live          time.Duration // a consumer idle longer is presumed gone

	mu           sync.Mutex
	index, count int
}

// Refresh reads the group's consumers.
func (s *GroupShard) Refresh(ctx context.Context) error {
	cs, err := s.RDB.XInfoConsumers(ctx, s.Stream, s.Group).Result()
	if err != nil {
		return fmt.Errorf("read consumers of %s/%s: %w", s.Stream, s.Group, err)
	}
	names := []string{s.Self}
	for _, c := range cs {
		if c.Name != s.Self && c.Idle < s.Live {
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	s.mu.Lock()
	s.index, s.count = slices.Index(names, s.Self), len(names)
	s.mu.Unlock()
	return nil
}

// Mine reports whether this replica watches the game; before the first
// Refresh, every game is.
func (s *GroupShard) Mine(gameID string) bool {
	s.mu.Lock()
	index, count := s.index, s.count
	s.mu.Unlock()
	if count <= 1 {
		return true
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(gameID))
	return int(h.Sum32()%uint32(count)) == index
}
