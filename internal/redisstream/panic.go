package redisstream

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/lerenn/asyncapi-codegen/pkg/extensions"
)

// PanicError is a handler's panic turned into an error by Middleware, so
// the entry is Nak'ed and follows retry and dead-letter like any failure
// instead of taking the process (and every job in it) down.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the handler's goroutine at the panic
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("handler panic: %v\n%s", e.Value, e.Stack)
}

// callRecovering runs next and returns a panic of it as a *PanicError.
// The generated controller Naks an entry when the middleware chain returns
// an error (it Acks only after the handler returned nil), so the entry is
// neither lost nor left in hand.
func callRecovering(ctx context.Context, next extensions.NextMiddleware) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return next(ctx)
}
