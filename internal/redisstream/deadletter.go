package redisstream

import (
	"strconv"
	"time"
)

// deadLetter builds the dead-letter entry for d: why, then the original
// fields; an original field named like a dead-letter field is kept as
// "original.<name>".
func (r *reader) deadLetter(d *Delivery, reason, errText string) publication {
	target := r.ci.dead
	if target == nil {
		target = r.b.channel(r.ci.address + ":dead")
	}
	r.mu.Lock()
	count := d.count
	r.mu.Unlock()
	fields := make([]string, 0, 10+2*len(d.values))
	fields = append(fields,
		"dead_reason", reason,
		"dead_error", errText,
		"original_id", d.id,
		"delivery_count", strconv.FormatInt(count, 10),
		"dead_at_ms", strconv.FormatInt(time.Now().UnixMilli(), 10),
	)
	for name, v := range d.values {
		s, _ := v.(string)
		switch name {
		case "dead_reason", "dead_error", "original_id", "delivery_count", "dead_at_ms":
			name = "original." + name
		}
		fields = append(fields, name, s)
	}
	// Cut to the bounds here, where every dead letter is made
	// (deadletter_bound.go).
	fields = boundDeadLetter(fields, r.ci.codec, r.b.opts.MaxFieldSize)
	r.b.opts.Observer.DeadLettered(r.ci.address, reason)
	return publication{channel: target, fields: fields}
}
