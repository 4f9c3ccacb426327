package redisstream

import (
	"strconv"
	"time"
)

// deadLetter builds the dead-letter entry for d in the layout of
// deadfields.go: why, then the original fields; an original field named
// like a dead-letter field is kept as "original.<name>" (one named
// dead_truncated by boundDeadLetter).
func (r *reader) deadLetter(d *Delivery, reason, errText string) publication {
	target := r.ci.dead
	if target == nil {
		// <stream>:dead, next to the entry's shard key (same hash tag).
		target = r.b.channel(d.Stream() + ":dead")
	}
	r.mu.Lock()
	count := d.count
	r.mu.Unlock()
	fields := make([]string, 0, deadHeaderItems+2*len(d.values))
	fields = append(fields,
		FieldDeadReason, reason,
		FieldDeadError, errText,
		FieldOriginalID, d.id,
		FieldDeliveryCount, strconv.FormatInt(count, 10),
		FieldDeadAtMS, strconv.FormatInt(time.Now().UnixMilli(), 10),
	)
	for name, v := range d.values {
		s, _ := v.(string)
		if isDeadHeader(name) {
			name = OriginalPrefix + name
		}
		fields = append(fields, name, s)
	}
	// Cut to the bounds here, where every dead letter is made
	// (deadletter_bound.go).
	fields = boundDeadLetter(fields, r.ci.codec, r.b.opts.MaxFieldSize)
	r.b.opts.Observer.DeadLettered(r.ci.address, reason)
	return publication{channel: target, fields: fields}
}
