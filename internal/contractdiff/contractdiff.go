// Package contractdiff compares two versions of rtmanager's wire contract
// and lists the changes that would break the other side of a channel.
//
// The official @asyncapi/diff classifies edits inside a payload schema as
// "unclassified"; this package applies rtmanager's own rules instead, from
// the point of view of each side. The direction of a channel comes from the
// contract's operations: `action: receive` means rtmanager consumes what
// Lobby produces, `action: send` means Lobby consumes what rtmanager
// produces. A channel without any operation is judged by both rule sets,
// the strictest reading.
package contractdiff

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"galaxy/rtmanager/api"
)

// Rule names one kind of change. The names are stable: tests and readers
// match on them.
type Rule string

// Breaking rules.
const (
	ChannelRemoved      Rule = "channel-removed"
	AddressChanged      Rule = "address-changed"
	StreamChanged       Rule = "x-redis-stream-changed"
	ShardsChanged       Rule = "x-redis-shards-changed"
	MessageRemoved      Rule = "message-removed"
	OperationRemoved    Rule = "operation-removed"
	OperationChanged    Rule = "operation-changed"
	RequiredAdded       Rule = "required-field-added"
	RequiredRemoved     Rule = "required-field-removed"
	TypeChanged         Rule = "type-changed"
	EnumNarrowed        Rule = "enum-narrowed"
	EnumWidened         Rule = "enum-widened"
	ConstraintTightened Rule = "constraint-tightened"
)

// Compatible rules, reported for the reader's information.
const (
	ChannelAdded   Rule = "channel-added"
	OperationAdded Rule = "operation-added"
	FieldAdded     Rule = "field-added"
	// EnumValueForNewChannel: a sent enum gained values that answer only
	// jobs of a channel new in this contract (x-enum-new-channel), so no
	// released Lobby, which never wrote such jobs, can read them.
	EnumValueForNewChannel Rule = "enum-value-for-new-channel"
)

// Direction is which way a channel's messages flow, seen from rtmanager.
type Direction int

// Directions. A channel can be both when operations of both actions use it.
const (
	Receive Direction = 1 << iota // rtmanager receives, Lobby produces
	Send                          // rtmanager sends, Lobby consumes
)

func (d Direction) String() string {
	switch d {
	case Receive:
		return "rtmanager receives"
	case Send:
		return "rtmanager sends"
	case Receive | Send:
		return "rtmanager sends and receives"
	}
	return "no operation"
}

// Change is one difference between the two contracts.
type Change struct {
	Rule     Rule
	Breaking bool
	// Where names the channel (key and address) or the operation.
	Where string
	// Path is the property path inside the payload ("payload.game_id"),
	// empty for channel- and operation-level changes.
	Path   string
	Detail string
}

func (c Change) String() string {
	where := c.Where
	if c.Path != "" {
		where += " " + c.Path
	}
	return fmt.Sprintf("%s: %s: %s", where, c.Rule, c.Detail)
}

// Report is the outcome of Compare.
type Report struct {
	OldVersion, NewVersion string
	// MajorBumped is true when the new info.version has a higher major than
	// the old one: the only way a deliberate break passes.
	MajorBumped bool
	Changes     []Change
}

// Breaks returns the breaking changes.
func (r *Report) Breaks() []Change { return r.filter(true) }

// Compatible returns the changes that break nobody.
func (r *Report) Compatible() []Change { return r.filter(false) }

func (r *Report) filter(breaking bool) []Change {
	var out []Change
	for _, c := range r.Changes {
		if c.Breaking == breaking {
			out = append(out, c)
		}
	}
	return out
}

// Passes reports whether the new contract may be merged: no break, or every
// break accepted by a major version bump.
func (r *Report) Passes() bool { return len(r.Breaks()) == 0 || r.MajorBumped }

// Compare lists the changes from the released contract old to cur.
func Compare(old, cur *api.Document) (*Report, error) {
	oldMajor, err := major(old.Version)
	if err != nil {
		return nil, fmt.Errorf("compare contracts: old info.version: %w", err)
	}
	newMajor, err := major(cur.Version)
	if err != nil {
		return nil, fmt.Errorf("compare contracts: new info.version: %w", err)
	}
	oldOps, err := operations(old)
	if err != nil {
		return nil, fmt.Errorf("compare contracts: old: %w", err)
	}
	newOps, err := operations(cur)
	if err != nil {
		return nil, fmt.Errorf("compare contracts: new: %w", err)
	}
	d := &differ{old: old, cur: cur, newOps: newOps}
	d.operations(oldOps, newOps)
	d.shards(old.Shards, cur.Shards)
	d.channels(old, cur, oldOps)
	sort.SliceStable(d.changes, func(i, j int) bool {
		a, b := d.changes[i], d.changes[j]
		if a.Where != b.Where {
			return a.Where < b.Where
		}
		return a.Path < b.Path
	})
	return &Report{
		OldVersion:  old.Version,
		NewVersion:  cur.Version,
		MajorBumped: newMajor > oldMajor,
		Changes:     d.changes,
	}, nil
}

// major reads the major number of a semantic version ("1.2.3", "v2").
func major(version string) (int, error) {
	v := strings.TrimPrefix(strings.TrimSpace(version), "v")
	head, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(head)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a semantic version", version)
	}
	return n, nil
}

type operation struct {
	Action  string
	Channel string // channel key
}

// operations reads the root operations of the document; package api does not
// model them because only this gate needs them.
func operations(doc *api.Document) (map[string]operation, error) {
	var raw struct {
		Operations map[string]struct {
			Action  string `json:"action"`
			Channel struct {
				Ref string `json:"$ref"`
			} `json:"channel"`
		} `json:"operations"`
	}
	if err := json.Unmarshal(doc.JSON, &raw); err != nil {
		return nil, fmt.Errorf("read operations: %w", err)
	}
	out := make(map[string]operation, len(raw.Operations))
	for key, op := range raw.Operations {
		ch, ok := strings.CutPrefix(op.Channel.Ref, "#/channels/")
		if !ok {
			return nil, fmt.Errorf("operation %s: channel $ref %q does not point into #/channels", key, op.Channel.Ref)
		}
		ch = strings.ReplaceAll(strings.ReplaceAll(ch, "~1", "/"), "~0", "~")
		if _, ok := doc.Channels[ch]; !ok {
			return nil, fmt.Errorf("operation %s: channel %q does not exist", key, ch)
		}
		if op.Action != "send" && op.Action != "receive" {
			return nil, fmt.Errorf("operation %s: unknown action %q", key, op.Action)
		}
		out[key] = operation{Action: op.Action, Channel: ch}
	}
	return out, nil
}

func directionOf(ops map[string]operation, channel string) Direction {
	var d Direction
	for _, op := range ops {
		if op.Channel != channel {
			continue
		}
		if op.Action == "receive" {
			d |= Receive
		} else {
			d |= Send
		}
	}
	if d == 0 {
		return Receive | Send
	}
	return d
}

type differ struct {
	changes  []Change
	old, cur *api.Document
	newOps   map[string]operation
}

// newReceiveChannel reports whether key is a channel of the new contract,
// absent from the released one, that rtmanager receives.
func (d *differ) newReceiveChannel(key string) bool {
	if _, ok := d.cur.Channels[key]; !ok {
		return false
	}
	if _, ok := d.old.Channels[key]; ok {
		return false
	}
	for _, op := range d.newOps {
		if op.Channel == key && op.Action == "receive" {
			return true
		}
	}
	return false
}

func (d *differ) add(rule Rule, breaking bool, where, path, format string, args ...any) {
	d.changes = append(d.changes, Change{Rule: rule, Breaking: breaking, Where: where, Path: path, Detail: fmt.Sprintf(format, args...)})
}

func (d *differ) operations(oldOps, newOps map[string]operation) {
	for _, key := range sortedKeys(oldOps) {
		o := oldOps[key]
		where := "operation " + key
		n, ok := newOps[key]
		switch {
		case !ok:
			d.add(OperationRemoved, true, where, "", "%s on channel %s was removed", o.Action, o.Channel)
		case n.Action != o.Action:
			d.add(OperationChanged, true, where, "", "action changed from %s to %s", o.Action, n.Action)
		case n.Channel != o.Channel:
			d.add(OperationChanged, true, where, "", "channel changed from %s to %s", o.Channel, n.Channel)
		}
	}
	for _, key := range sortedKeys(newOps) {
		if _, ok := oldOps[key]; !ok {
			n := newOps[key]
			d.add(OperationAdded, false, "operation "+key, "", "new %s on channel %s", n.Action, n.Channel)
		}
	}
}

func (d *differ) channels(old, cur *api.Document, oldOps map[string]operation) {
	for _, key := range sortedKeys(old.Channels) {
		o := old.Channels[key]
		// The released direction decides: it is what the deployed other
		// side was built against.
		dir := directionOf(oldOps, key)
		where := fmt.Sprintf("channel %s (%s, %s)", key, o.Address, dir)
		n, ok := cur.Channels[key]
		if !ok {
			d.add(ChannelRemoved, true, where, "", "the channel was removed")
			continue
		}
		if n.Address != o.Address {
			d.add(AddressChanged, true, where, "", "address changed from %q to %q", o.Address, n.Address)
		}
		d.stream(where, o.Stream, n.Stream)
		switch {
		case o.Message == nil || o.Message.Payload == nil:
		case n.Message == nil || n.Message.Payload == nil:
			d.add(MessageRemoved, true, where, "", "message %s was removed", o.Message.Name)
		default:
			d.schema(where, "payload", dir, o.Message.Payload, n.Message.Payload)
		}
	}
	for _, key := range sortedKeys(cur.Channels) {
		if _, ok := old.Channels[key]; !ok {
			d.add(ChannelAdded, false, "channel "+key, "", "new channel at %q", cur.Channels[key].Address)
		}
	}
}

// stream compares the x-redis-stream keys that both sides must agree on.
// maxlen only bounds the stream's memory, so changing it breaks nobody.
func (d *differ) stream(where string, o, n api.StreamExtension) {
	for _, f := range []struct{ name, old, cur string }{
		{"encoding", o.Encoding, n.Encoding},
		{"group", o.Group, n.Group},
		{"partition-key", o.PartitionKey, n.PartitionKey},
		{"dead-letter", o.DeadLetter, n.DeadLetter},
	} {
		if f.old != f.cur {
			d.add(StreamChanged, true, where, "", "x-redis-stream %s changed from %q to %q", f.name, f.old, f.cur)
		}
	}
	// A sharded address is only used where the released contract had none
	// to use (a Redis Cluster, or several shards): adding one breaks nobody,
	// changing or removing one moves the channel's keys.
	if o.ShardedAddress != n.ShardedAddress && o.ShardedAddress != "" {
		d.add(StreamChanged, true, where, "", "x-redis-stream sharded-address changed from %q to %q", o.ShardedAddress, n.ShardedAddress)
	}
}

// shards compares x-redis-shards: a game's shard, and so the keys of its
// jobs, results and records, depends on both the count and the tag.
func (d *differ) shards(o, n api.Sharding) {
	if o != n {
		d.add(ShardsChanged, true, "document x-redis-shards", "", "changed from count %d, tag %q to count %d, tag %q", o.Count, o.Tag, n.Count, n.Tag)
	}
}

// schema compares one schema node; dir decides which edits break.
func (d *differ) schema(where, path string, dir Direction, o, n *api.Schema) {
	recv, send := dir&Receive != 0, dir&Send != 0
	if o.Type != n.Type {
		d.add(TypeChanged, true, where, path, "type changed from %q to %q", o.Type, n.Type)
		return
	}
	d.enum(where, path, recv, send, o.Enum, n)
	if recv {
		d.constraints(where, path, o, n)
	}
	for _, name := range o.PropertyNames() {
		p := path + "." + name
		op, np := o.Properties[name], n.Properties[name]
		wasReq, isReq := o.IsRequired(name), np != nil && n.IsRequired(name)
		switch {
		case np == nil && wasReq:
			// Lobby built against the new contract stops writing it while a
			// released rtmanager still requires it (receive); a released
			// Lobby reads a field rtmanager no longer writes (send).
			d.add(RequiredRemoved, true, where, p, "required field was removed or renamed")
		case np == nil:
			// An optional field dropped: producers may still write it,
			// consumers never relied on it.
		case wasReq && !isReq && send:
			d.add(RequiredRemoved, true, where, p, "field is no longer required, a released Lobby relies on it")
		case !wasReq && isReq && recv:
			d.add(RequiredAdded, true, where, p, "optional field became required, a released Lobby may omit it")
		}
		if np != nil {
			d.schema(where, p, dir, op, np)
		}
	}
	for _, name := range n.PropertyNames() {
		if _, ok := o.Properties[name]; ok {
			continue
		}
		p := path + "." + name
		switch {
		case n.IsRequired(name) && recv:
			d.add(RequiredAdded, true, where, p, "new required field, a released Lobby does not write it")
		case n.IsRequired(name):
			d.add(FieldAdded, false, where, p, "new required field, a released Lobby ignores it")
		default:
			d.add(FieldAdded, false, where, p, "new optional field")
		}
	}
}

// enum: a receiver must keep accepting every value it accepted (no
// narrowing); a sender must not write values the reader does not know (no
// widening). No enum at all means any value.
func (d *differ) enum(where, path string, recv, send bool, o []any, ns *api.Schema) {
	n := ns.Enum
	if recv {
		switch {
		case len(o) == 0 && len(n) > 0:
			d.add(EnumNarrowed, true, where, path, "enum added: only %s accepted now", list(n))
		case len(n) > 0:
			if gone := missing(o, n); len(gone) > 0 {
				d.add(EnumNarrowed, true, where, path, "no longer accepted: %s", list(gone))
			}
		}
	}
	if send {
		switch {
		case len(o) > 0 && len(n) == 0:
			d.add(EnumWidened, true, where, path, "enum removed: any value may be sent now")
		case len(o) > 0:
			added, scoped := d.splitScoped(missing(n, o), ns.EnumNewChannel)
			if len(added) > 0 {
				d.add(EnumWidened, true, where, path, "new values a released Lobby does not know: %s", list(added))
			}
			for _, ch := range sortedKeys(scoped) {
				d.add(EnumValueForNewChannel, false, where, path,
					"new values %s answer only jobs of the new channel %s, which a released Lobby never writes", list(scoped[ch]), ch)
			}
		}
	}
}

// splitScoped separates added enum values that x-enum-new-channel ties to
// a new receive channel (by channel) from the others.
func (d *differ) splitScoped(added []any, scope map[string]string) (rest []any, scoped map[string][]any) {
	scoped = map[string][]any{}
	for _, v := range added {
		s, ok := v.(string)
		ch := scope[s]
		if ok && ch != "" && d.newReceiveChannel(ch) {
			scoped[ch] = append(scoped[ch], v)
			continue
		}
		rest = append(rest, v)
	}
	return rest, scoped
}

// constraints lists what a receiver would now refuse that it accepted.
func (d *differ) constraints(where, path string, o, n *api.Schema) {
	if o.Pattern != n.Pattern {
		d.add(ConstraintTightened, true, where, path, "pattern changed from %q to %q", o.Pattern, n.Pattern)
	}
	if o.Format != n.Format {
		d.add(ConstraintTightened, true, where, path, "format changed from %q to %q", o.Format, n.Format)
	}
	if tighter(o.MaxLength, n.MaxLength, func(a, b int) bool { return b < a }) {
		d.add(ConstraintTightened, true, where, path, "maxLength lowered from %s to %d", show(o.MaxLength), *n.MaxLength)
	}
	if tighter(o.MinLength, n.MinLength, func(a, b int) bool { return b > a }) {
		d.add(ConstraintTightened, true, where, path, "minLength raised from %s to %d", show(o.MinLength), *n.MinLength)
	}
	if tighter(o.Maximum, n.Maximum, func(a, b float64) bool { return b < a }) {
		d.add(ConstraintTightened, true, where, path, "maximum lowered from %s to %v", show(o.Maximum), *n.Maximum)
	}
	if tighter(o.Minimum, n.Minimum, func(a, b float64) bool { return b > a }) {
		d.add(ConstraintTightened, true, where, path, "minimum raised from %s to %v", show(o.Minimum), *n.Minimum)
	}
}

// tighter: a bound that appears is tighter than none; a bound that goes
// away only loosens.
func tighter[T int | float64](o, n *T, stricter func(a, b T) bool) bool {
	switch {
	case n == nil:
		return false
	case o == nil:
		return true
	default:
		return stricter(*o, *n)
	}
}

func show[T int | float64](p *T) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

// missing returns the values of a that are not in b.
func missing(a, b []any) []any {
	var out []any
	for _, x := range a {
		found := false
		for _, y := range b {
			if reflect.DeepEqual(x, y) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, x)
		}
	}
	return out
}

func list(vs []any) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%q", fmt.Sprint(v))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
