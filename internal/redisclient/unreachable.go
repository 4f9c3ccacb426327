package redisclient

import (
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// IsUnreachable reports whether err means "Redis could not serve this now"
// — the connection failed, or the node answered that it cannot serve yet —
// as opposed to an answer about the command. On a cluster that includes a
// cluster that is down (CLUSTERDOWN, while a master is failed over) and a
// slot in migration (TRYAGAIN): both pass without anything the caller
// could fix. (READONLY is not here: go-redis's cluster client follows it
// itself, and on a single Redis it means a replica was configured.)
func IsUnreachable(err error) bool {
	if err == nil {
		return false
	}
	var op *net.OpError
	switch {
	case errors.As(err, &op),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, redis.ErrClosed):
		return true
	}
	msg := err.Error()
	// A restarting server answers LOADING until its data set is back.
	for _, s := range []string{"LOADING ", "connection pool timeout", "CLUSTERDOWN", "TRYAGAIN"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
