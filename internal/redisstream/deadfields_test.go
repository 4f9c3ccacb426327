package redisstream_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

// The dead letter's own fields are the properties of the contract's
// dead-letter messages, as the generated types name them.
func TestDeadLetterFieldsAreTheContracts(t *testing.T) {
	for _, typ := range []reflect.Type{
		reflect.TypeOf(runtimejobs.RuntimeStopJobDeadLetterSchema{}),
		reflect.TypeOf(runtimejobs.RuntimeStartJobDeadLetterSchema{}),
	} {
		var names []string
		for i := 0; i < typ.NumField(); i++ {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			names = append(names, name)
		}
		assert.ElementsMatch(t, names, redisstream.DeadLetterFields(), typ.Name())
	}
}

// What the broker writes, ReadDeadLetter reads back: the dead letter's own
// fields, and the original entry whole, fields named like the dead
// letter's own included.
func TestReadDeadLetterGivesBackWhatTheBrokerWrote(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.MaxDeliveries = 2
	startApp(t, rdb, opts, 1, func(context.Context, *runtimejobs.AppController, runtimejobs.RuntimeStopJobMessage) error {
		return context.DeadlineExceeded // fails until dead-lettered
	})
	job := map[string]string{"game_id": "g1", "reason": "game_finished", "dead_reason": "spoof", "original_id": "9-9",
		"original.dead_reason": "mine", "original.original.original_id": "deep"}
	id := addJob(t, rdb, flat(job)...)
	waitLen(t, rdb, dead, 1)
	dl := redisstream.ReadDeadLetter(streamEntries(t, rdb, dead)[0].Values)
	assert.Equal(t, redisstream.DeadMaxDeliveries, dl.Reason)
	assert.Contains(t, dl.Error, "deadline exceeded")
	assert.Equal(t, id, dl.OriginalID)
	assert.Equal(t, int64(2), dl.DeliveryCount)
	assert.Positive(t, dl.DeadAtMS)
	assert.Empty(t, dl.Truncated, "carried whole")
	assert.Equal(t, job, dl.Original)

	// An entry with a field named dead_truncated is carried whole (nothing
	// was cut, so it can be replayed), the field under its own name.
	job2 := map[string]string{"game_id": "g2", "reason": "game_finished", redisstream.FieldDeadTruncated: "spoof",
		"original." + redisstream.FieldDeadTruncated: "mine"}
	addJob(t, rdb, flat(job2)...)
	waitLen(t, rdb, dead, 2)
	dl = redisstream.ReadDeadLetter(streamEntries(t, rdb, dead)[1].Values)
	assert.Empty(t, dl.Truncated)
	assert.Equal(t, job2, dl.Original)
}

func TestReadDeadLetterToleratesMissingFields(t *testing.T) {
	dl := redisstream.ReadDeadLetter(map[string]any{"delivery_count": "x", "original.dead_error": "e", "original.other": "o"})
	require.Zero(t, dl.DeliveryCount)
	assert.Empty(t, dl.Reason)
	assert.Equal(t, map[string]string{"dead_error": "e", "original.other": "o"}, dl.Original,
		"only names of the dead letter's own fields are renamed back")
}

func flat(m map[string]string) []string {
	out := make([]string, 0, 2*len(m))
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}
