// Package none is the record-only runtime driver: stopping does nothing but
// the record's state change. For dry runs, demos and benchmarks.
package none

import (
	"context"
	"time"
)

// Driver implements stopruntime.Driver; its zero value is ready to use.
type Driver struct{}

// Stop always succeeds at once.
func (Driver) Stop(ctx context.Context, containerID string, grace time.Duration) error { return nil }
