package redisstream

// IsConnError reports whether err means Redis could not be reached (or
// refused writes for lack of memory), as opposed to an answer of Redis: the
// broker's own test (outage.go), for producers that retry such errors.
func IsConnError(err error) bool { return isConnErr(err) }
