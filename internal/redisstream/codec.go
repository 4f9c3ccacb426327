package redisstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"galaxy/rtmanager/api"
)

// Field names of the `payload` encoding, used for channels the contract does
// not map to fields.
const (
	payloadField = "payload"
	headerPrefix = "header:"
)

// Kinds of payload properties, from the contract's JSON Schema `type`.
type kind uint8

const (
	kindString kind = iota
	kindInteger
	kindNumber
	kindBoolean
	kindJSON // object, array or untyped: JSON text in one field
)

func kindOf(s *api.Schema) kind {
	switch s.Type {
	case "string":
		return kindString
	case "integer":
		return kindInteger
	case "number":
		return kindNumber
	case "boolean":
		return kindBoolean
	default:
		return kindJSON
	}
}

type property struct {
	name     string
	kind     kind
	required bool
	// jsonKey is the property name already JSON-quoted with its colon, so
	// building a payload does not quote names per message.
	jsonKey []byte
}

// codec maps one channel's messages between the generated code's JSON
// payloads and Redis stream fields. It is built once per channel from the
// contract; nothing on the per-message path looks the contract up again.
type codec struct {
	fields       bool // api.EncodingFields, else api.EncodingPayload
	props        []property
	byName       map[string]int
	partitionKey string
	maxFieldSize int
	maxFields    int
}

func newCodec(ch *api.Channel, maxFieldSize, maxFields int) (*codec, error) {
	c := &codec{
		fields:       ch.Stream.Encoding == api.EncodingFields,
		partitionKey: ch.Stream.PartitionKey,
		maxFieldSize: maxFieldSize,
		maxFields:    maxFields,
		byName:       map[string]int{},
	}
	if !c.fields {
		return c, nil
	}
	if ch.Message == nil || ch.Message.Payload == nil || len(ch.Message.Payload.Properties) == 0 {
		return nil, fmt.Errorf("channel %s: encoding fields needs a message payload with properties", ch.Key)
	}
	p := ch.Message.Payload
	for _, name := range p.PropertyNames() {
		key, _ := json.Marshal(name)
		c.byName[name] = len(c.props)
		c.props = append(c.props, property{
			name:     name,
			kind:     kindOf(p.Properties[name]),
			required: p.IsRequired(name),
			jsonKey:  append(key, ':'),
		})
	}
	return c, nil
}

// DecodeError says why a stream entry could not be mapped onto its message.
type DecodeError struct {
	Field  string
	Reason string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// decoded is the result of mapping one stream entry.
type decoded struct {
	payload []byte
	headers map[string][]byte
	key     string       // partition key value ("" when none)
	err     *DecodeError // first problem found; payload holds what could be read
}

// decode maps stream fields onto a payload. When some fields cannot be
// mapped, it still returns the properties that could be read, so the
// application can answer the entry (for instance with its game id).
func (c *codec) decode(values map[string]any) decoded {
	var d decoded
	if len(values) > c.maxFields {
		d.err = &DecodeError{Reason: fmt.Sprintf("%d fields, more than the limit of %d", len(values), c.maxFields)}
	}
	for name, v := range values {
		s, _ := v.(string)
		if len(s) > c.maxFieldSize && d.err == nil {
			d.err = &DecodeError{Field: name, Reason: fmt.Sprintf("value of %d bytes, more than the limit of %d", len(s), c.maxFieldSize)}
		}
	}
	if !c.fields {
		return c.decodePayload(values, d)
	}
	buf := make([]byte, 0, 128)
	buf = append(buf, '{')
	first := true
	for i := range c.props {
		p := &c.props[i]
		raw, present := values[p.name]
		s, _ := raw.(string)
		if !present || (s == "" && p.kind != kindString) {
			if p.required && d.err == nil {
				d.err = &DecodeError{Field: p.name, Reason: "required field is missing"}
			}
			continue
		}
		if len(s) > c.maxFieldSize {
			continue
		}
		start := len(buf)
		if !first {
			buf = append(buf, ',')
		}
		buf = append(buf, p.jsonKey...)
		var err string
		buf, err = appendValue(buf, p.kind, s)
		if err != "" {
			buf = buf[:start]
			if d.err == nil {
				d.err = &DecodeError{Field: p.name, Reason: err}
			}
			continue
		}
		first = false
		if p.name == c.partitionKey {
			d.key = strings.TrimSpace(s)
		}
	}
	d.payload = append(buf, '}')
	return d
}

// decodeDups is decode for an entry that names fields more than once
// (rawread.go). Such an entry is undecodable. A field whose values differ
// is left out of the payload: no reader can tell which one was meant, so
// the application cannot answer it by its game id (dead letter only); a
// field repeated with one value is kept.
func (c *codec) decodeDups(values map[string]any, dups []fieldDup) decoded {
	if len(dups) == 0 {
		return c.decode(values)
	}
	kept := values
	for _, f := range dups {
		if !f.differ {
			continue
		}
		if len(kept) == len(values) {
			kept = make(map[string]any, len(values))
			for k, v := range values {
				kept[k] = v
			}
		}
		delete(kept, f.name)
	}
	d := c.decode(kept)
	f := dups[0]
	reason := fmt.Sprintf("named %d times", f.n)
	if f.differ {
		reason += " with different values"
	}
	// The repetition is the first thing to tell: it may explain the rest
	// (a required field left out).
	d.err = &DecodeError{Field: f.name, Reason: reason}
	return d
}

func appendValue(buf []byte, k kind, s string) ([]byte, string) {
	switch k {
	case kindString:
		if !utf8.ValidString(s) {
			return buf, "not valid UTF-8"
		}
		return appendJSONString(buf, s), ""
	case kindInteger:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return buf, fmt.Sprintf("%q is not a decimal integer", clip(s))
		}
		return strconv.AppendInt(buf, n, 10), ""
	case kindNumber:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return buf, fmt.Sprintf("%q is not a decimal number", clip(s))
		}
		return strconv.AppendFloat(buf, f, 'g', -1, 64), ""
	case kindBoolean:
		switch s {
		case "true", "false":
			return append(buf, s...), ""
		}
		return buf, fmt.Sprintf("%q is not true or false", clip(s))
	default:
		if !json.Valid([]byte(s)) {
			return buf, "not valid JSON"
		}
		return append(buf, s...), ""
	}
}

func (c *codec) decodePayload(values map[string]any, d decoded) decoded {
	raw, ok := values[payloadField]
	s, _ := raw.(string)
	if !ok {
		if d.err == nil {
			d.err = &DecodeError{Field: payloadField, Reason: "required field is missing"}
		}
		d.payload = []byte("{}")
	} else {
		d.payload = []byte(s)
	}
	for name, v := range values {
		if h, ok := strings.CutPrefix(name, headerPrefix); ok {
			hs, _ := v.(string)
			if d.headers == nil {
				d.headers = map[string][]byte{}
			}
			d.headers[h] = []byte(hs)
		}
	}
	if c.partitionKey != "" && d.err == nil {
		var m map[string]any
		if err := json.Unmarshal(d.payload, &m); err == nil {
			if k, ok := m[c.partitionKey].(string); ok {
				d.key = strings.TrimSpace(k)
			}
		}
	}
	return d
}

// encode maps a published message onto stream field/value pairs.
func (c *codec) encode(payload []byte, headers map[string][]byte) ([]string, error) {
	if !c.fields {
		out := make([]string, 0, 2+2*len(headers))
		out = append(out, payloadField, string(payload))
		names := make([]string, 0, len(headers))
		for h := range headers {
			names = append(names, h)
		}
		sort.Strings(names)
		for _, h := range names {
			out = append(out, headerPrefix+h, string(headers[h]))
		}
		return out, nil
	}
	if out, ok := c.encodeFlat(payload); ok {
		return out, nil
	}
	return c.encodeSlow(payload)
}

// encodeSlow is the general path of encode for the fields encoding.
func (c *codec) encodeSlow(payload []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("encode payload: not a JSON object: %w", err)
	}
	out := make([]string, 0, 2*len(m))
	for i := range c.props {
		p := &c.props[i]
		v, ok := m[p.name]
		if !ok || v == nil {
			continue
		}
		s, err := fieldText(v)
		if err != nil {
			return nil, fmt.Errorf("encode payload: %s: %w", p.name, err)
		}
		out = append(out, p.name, s)
		delete(m, p.name)
	}
	// Properties the contract does not name are kept, in a stable order.
	if len(m) > 0 {
		extra := make([]string, 0, len(m))
		for k := range m {
			extra = append(extra, k)
		}
		sort.Strings(extra)
		for _, k := range extra {
			if m[k] == nil {
				continue
			}
			s, err := fieldText(m[k])
			if err != nil {
				return nil, fmt.Errorf("encode payload: %s: %w", k, err)
			}
			out = append(out, k, s)
		}
	}
	return out, nil
}

func fieldText(v any) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case json.Number:
		return t.String(), nil
	case bool:
		if t {
			return "true", nil
		}
		return "false", nil
	default:
		b, err := json.Marshal(t)
		return string(b), err
	}
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// appendJSONString appends s as a JSON string. s is valid UTF-8.
func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= 0x20 && b != '"' && b != '\\' && b < 0x7f {
			continue
		}
		if b >= 0x80 {
			// Multi-byte UTF-8 is copied as is, except U+2028/U+2029 which
			// encoding/json escapes too; copying them is valid JSON as well.
			continue
		}
		buf = append(buf, s[start:i]...)
		switch b {
		case '"', '\\':
			buf = append(buf, '\\', b)
		case '\n':
			buf = append(buf, '\\', 'n')
		case '\r':
			buf = append(buf, '\\', 'r')
		case '\t':
			buf = append(buf, '\\', 't')
		default:
			buf = append(buf, '\\', 'u', '0', '0', hexDigit(b>>4), hexDigit(b&0xf))
		}
		start = i + 1
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

func hexDigit(b byte) byte {
	const digits = "0123456789abcdef"
	return digits[b]
}

// FieldsToPayload maps a stream entry of ch onto its JSON payload exactly as
// the broker does when it receives it, with the default limits. Tests and
// tools use it to read streams through the contract.
func FieldsToPayload(ch *api.Channel, values map[string]any) ([]byte, error) {
	d, err := NewPayloadDecoder(ch)
	if err != nil {
		return nil, err
	}
	return d.Decode(values)
}

// PayloadDecoder is FieldsToPayload with the channel's mapping worked out
// once, for a reader that decodes many entries of one channel.
type PayloadDecoder struct{ c *codec }

// NewPayloadDecoder works out ch's mapping, with the default limits.
func NewPayloadDecoder(ch *api.Channel) (*PayloadDecoder, error) {
	c, err := newCodec(ch, DefaultMaxFieldSize, DefaultMaxFields)
	if err != nil {
		return nil, err
	}
	return &PayloadDecoder{c: c}, nil
}

// Decode maps a stream entry onto its JSON payload, as FieldsToPayload.
func (p *PayloadDecoder) Decode(values map[string]any) ([]byte, error) {
	d := p.c.decode(values)
	if d.err != nil {
		return d.payload, d.err
	}
	return d.payload, nil
}

// PayloadToFields maps a JSON payload of ch onto stream field/value pairs
// exactly as the broker does when it publishes.
func PayloadToFields(ch *api.Channel, payload []byte) ([]string, error) {
	c, err := newCodec(ch, DefaultMaxFieldSize, DefaultMaxFields)
	if err != nil {
		return nil, err
	}
	return c.encode(payload, nil)
}
