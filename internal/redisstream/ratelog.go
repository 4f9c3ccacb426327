package redisstream

import (
	"log/slog"
	"sync"
	"time"
)

// rateLog logs one line per interval for a repeated problem and counts the
// rest, so an outage does not flood the log.
type rateLog struct {
	log        *slog.Logger
	every      time.Duration
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *rateLog) warn(msg string, err error) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	l.log.Warn(msg, "err", err.Error(), "suppressed", n)
}
