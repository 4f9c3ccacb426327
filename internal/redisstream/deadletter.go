package redisstream

import (
	"strconv"
	"time"
)

// deadLetter builds the dead-letter entry for d (deadLetterFields).
func (r *reader) deadLetter(d *Delivery, reason, errText string) publication {
	target := r.ci.dead
	if target == nil {
		// <stream>:dead, next to the entry's shard key (same hash tag).
		target = r.b.channel(d.Stream() + ":dead")
	}
	r.mu.Lock()
	count := d.count
	r.mu.Unlock()
	fields := deadLetterFields(reason, errText, d.id, count, time.Now().UnixMilli(), d.values, r.ci.codec, r.b.opts.MaxFieldSize)
	r.b.opts.Observer.DeadLettered(r.ci.address, reason)
	return publication{channel: target, fields: fields}
}

// deadLetterFields is the dead letter of an entry in the layout of
// deadfields.go: why, then the original fields under deadName, cut to the
// bounds (deadletter_bound.go), where every dead letter is made.
func deadLetterFields(reason, errText, id string, count, nowMS int64, values map[string]any, c *codec, maxValue int) []string {
	fields := make([]string, 0, deadHeaderItems+2*len(values))
	fields = append(fields,
		FieldDeadReason, reason,
		FieldDeadError, errText,
		FieldOriginalID, id,
		FieldDeliveryCount, strconv.FormatInt(count, 10),
		FieldDeadAtMS, strconv.FormatInt(nowMS, 10),
	)
	for name, v := range values {
		s, _ := v.(string)
		fields = append(fields, deadName(name), s)
	}
	return boundDeadLetter(fields, c, maxValue)
}
