package stopruntime

import "time"

// Defaults of Options. rtmanager derives its takeover times from them
// (TakeoverFor), so a stop step and the takeover that presumes it dead
// cannot drift apart.
const (
	// DefaultStopGrace is the grace a runtime gets before it is killed.
	DefaultStopGrace = 10 * time.Second
	// DefaultStopMargin is added to the grace to bound one Driver.Stop call,
	// so a hung daemon cannot hold a stop forever.
	DefaultStopMargin = 30 * time.Second
	// DefaultTakeoverAfter is the shortest takeover time.
	DefaultTakeoverAfter = 2 * time.Minute
)

// TakeoverFor is the takeover time for steps that take at most busy plus
// one driver call's DefaultStopMargin: twice that, and never less than
// DefaultTakeoverAfter, so a job still at work is not presumed dead.
// For a stop, busy is the stop grace.
func TakeoverFor(busy time.Duration) time.Duration {
	return max(DefaultTakeoverAfter, 2*(busy+DefaultStopMargin))
}
