package redisstream

import (
	"strconv"
	"strings"
)

// The dead letter's layout, written by the broker (deadletter.go) and read
// back by the tools: these fields first, as the contract's dead-letter
// messages name them (RuntimeStopJobDeadLetter, RuntimeStartJobDeadLetter;
// a test holds them to the generated types), then the original entry's
// fields. An original field named like one of the dead letter's own
// (these, or FieldDeadTruncated) is kept as OriginalPrefix+name, and so is
// one already named OriginalPrefix+such a name (deadName), so no original
// field can pass for another or for the dead letter's own.
const (
	FieldDeadReason    = "dead_reason"
	FieldDeadError     = "dead_error"
	FieldOriginalID    = "original_id"
	FieldDeliveryCount = "delivery_count"
	FieldDeadAtMS      = "dead_at_ms"
	OriginalPrefix     = "original."
	// FieldDeadTruncated follows the copied fields of a dead letter that
	// does not carry its entry whole (deadletter_bound.go); its value says
	// what was left out.
	FieldDeadTruncated = "dead_truncated"
)

// DeadLetterFields are the fields a dead letter puts in front of the
// original entry's, in that order.
func DeadLetterFields() []string {
	return []string{FieldDeadReason, FieldDeadError, FieldOriginalID, FieldDeliveryCount, FieldDeadAtMS}
}

// isDeadHeader reports whether name is one of DeadLetterFields.
func isDeadHeader(name string) bool {
	switch name {
	case FieldDeadReason, FieldDeadError, FieldOriginalID, FieldDeliveryCount, FieldDeadAtMS:
		return true
	}
	return false
}

// IsDeadLetterField reports whether name is one of the dead letter's own
// fields: DeadLetterFields or FieldDeadTruncated.
func IsDeadLetterField(name string) bool {
	return isDeadHeader(name) || name == FieldDeadTruncated
}

// escapedName reports whether name is one of the dead letter's own fields
// behind any number of OriginalPrefix: the names deadName prefixes once more.
func escapedName(name string) bool {
	for {
		base, ok := strings.CutPrefix(name, OriginalPrefix)
		if !ok {
			return IsDeadLetterField(name)
		}
		name = base
	}
}

// deadName is the name an original field is kept under in its dead letter;
// originalName reads it back: originalName(deadName(n)) == n for every n,
// and deadName(n) is never one of the dead letter's own fields. Other
// names (nearly all) are kept as they are.
func deadName(name string) string {
	if escapedName(name) {
		return OriginalPrefix + name
	}
	return name
}

// originalName is the original field's name of a dead letter's field named
// name (not one of the dead letter's own).
func originalName(name string) string {
	if base, ok := strings.CutPrefix(name, OriginalPrefix); ok && escapedName(base) {
		return base
	}
	return name
}

// DeadLetter is a dead-letter entry read back.
type DeadLetter struct {
	Reason        string // dead_reason: DeadUndecodable, DeadInvalid or DeadMaxDeliveries
	Error         string // dead_error
	OriginalID    string // original_id: the entry's id on its stream
	DeliveryCount int64  // delivery_count; 0 when unreadable
	DeadAtMS      int64  // dead_at_ms; 0 when unreadable
	// Truncated is what the broker left out of the copy (dead_truncated);
	// empty when the dead letter carries its entry whole.
	Truncated string
	// Original are the original entry's fields, under their own names.
	Original map[string]string
}

// ReadDeadLetter reads a dead-letter entry's fields (as go-redis returns
// them); fields that are missing or not numbers read as zero values.
func ReadDeadLetter(values map[string]any) DeadLetter {
	str := func(name string) string { s, _ := values[name].(string); return s }
	num := func(name string) int64 { n, _ := strconv.ParseInt(str(name), 10, 64); return n }
	dl := DeadLetter{
		Reason: str(FieldDeadReason), Error: str(FieldDeadError), OriginalID: str(FieldOriginalID),
		DeliveryCount: num(FieldDeliveryCount), DeadAtMS: num(FieldDeadAtMS), Truncated: str(FieldDeadTruncated),
		Original: make(map[string]string, len(values)),
	}
	for name, v := range values {
		if IsDeadLetterField(name) {
			continue
		}
		s, _ := v.(string)
		dl.Original[originalName(name)] = s
	}
	return dl
}
