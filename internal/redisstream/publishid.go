package redisstream

import "context"

// The generated SendTo… methods return only an error, but the entry id of a
// job is its correlation id (results name it as job_id): a producer needs
// it. WithEntryID asks Publish, through the context the generated code
// passes on, to store the id Redis gave the entry.

type entryIDKey struct{}

// WithEntryID returns a context under which a Publish outside a handler
// stores the new entry's id in *id.
func WithEntryID(ctx context.Context, id *string) context.Context {
	return context.WithValue(ctx, entryIDKey{}, id)
}

func reportEntryID(ctx context.Context, id string) {
	if p, ok := ctx.Value(entryIDKey{}).(*string); ok && p != nil {
		*p = id
	}
}
