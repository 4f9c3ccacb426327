package startruntime

import (
	"context"

	"galaxy/rtmanager/internal/engines"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
)

// Spec is what a driver starts: a profile for one game, on behalf of one job.
type Spec struct {
	GameID, JobID string
	Profile       engines.Profile
}

// Runtime is a runtime a driver made for a game.
type Runtime struct {
	ContainerID string
	// JobID is the start job whose attempt made it (its label).
	JobID    string
	Endpoint string
	// NoProbe: the endpoint is not a real one (the none driver); the
	// start does not wait for it to accept connections.
	NoProbe bool
}

// Driver starts one kind of runtime. Errors wrapping
// stopruntime.ErrTransient are retried; any other error of Start is a
// permanent start failure (start_failed).
type Driver interface {
	// RuntimeName is the record's `runtime` value, the stop driver's key.
	RuntimeName() string
	// Start makes and starts the runtime, labelled with the game and the
	// job, and returns it without waiting for the engine to listen.
	Start(ctx context.Context, spec Spec) (Runtime, error)
	// Find lists the runtimes labelled with the game that still hold
	// resources (running or merely created), whichever job made them.
	Find(ctx context.Context, gameID string) ([]Runtime, error)
	// Remove stops and deletes a runtime; a runtime already gone is no error.
	Remove(ctx context.Context, containerID string) error
}

// Store is the part of the Redis store (runtimestore.Store) starts use.
type Store interface {
	BeginStart(ctx context.Context, gameID, job, engine string, nowMS, takeoverMS int64) (runtimestore.StartVerdict, stopruntime.Record, string, error)
	FinishStart(ctx context.Context, gameID, job string, nowMS int64, status string, res stopruntime.StoredResult, runtime string, op stopruntime.Operation) (runtimestore.StartVerdict, stopruntime.Record, error)
	AppendOperation(ctx context.Context, op stopruntime.Operation) error
}

var _ Store = (*runtimestore.Store)(nil)

// Input is one start request.
type Input struct {
	GameID string
	Engine string
	// JobID is the job's stream entry id: redeliveries carry the same one.
	JobID         string
	RequestedAtMS int64
}
