package runtimestore

import "galaxy/rtmanager/internal/stopruntime"

// Command arguments without allocations: go-redis writes a *string or an
// *int64 as its value, and boxing a pointer into an `any` allocates
// nothing, where boxing a string or an int64 allocates each time. So the
// values of a call's arguments live in the call itself (the fields below
// and loggedCall), and its argument lists hold pointers to them.

// callValues are the stop scripts' arguments of one call (call embeds it).
type callValues struct {
	job, status, text string
	now, takeover     int64
	argv              [4]any // backs args
}

// loggedCall is a call with an operation log entry: the entry's values
// and its argument list live in the same allocation.
type loggedCall struct {
	call
	op     stopruntime.Operation
	source string      // op.Source as a string (*OpSource is no *string)
	buf    [6 + 26]any // backs log (XADD) or entry (logged scripts)
}

// appendEntry appends the field names and values of the call's log entry
// to f, values as pointers into lc.
func (lc *loggedCall) appendEntry(f []any) []any {
	op := &lc.op
	f = append(f,
		"game_id", &op.GameID,
		"operation", &op.Operation,
		"source", &lc.source,
		"source_ref", &op.SourceRef,
		"reason", &op.Reason,
		"outcome", &op.Outcome,
		"error_code", &op.ErrorCode,
		"error_message", &op.ErrorMessage,
		"container_id", &op.ContainerID,
		"started_at_ms", &op.StartedAtMS,
		"finished_at_ms", &op.FinishedAtMS,
	)
	if op.RequestedAtMS > 0 {
		f = append(f, "requested_at_ms", &op.RequestedAtMS)
	}
	return f
}
