// Package runtimes holds what every runtime driver shares.
package runtimes

// State is what a driver knows of a runtime now (the runtime watch asks).
type State struct {
	// Running is true while the runtime runs (a paused or restarting
	// container counts as running: it has not ended).
	Running bool
	// ExitCode is the runtime's exit code once it ended, when known;
	// 128 + n for an engine killed by signal n.
	ExitCode *int64
	// OOMKilled: the runtime was killed for lack of memory (docker).
	OOMKilled bool
	// Reason says in words how it ended, for the event and the record.
	Reason string
}
