// Package api holds rtmanager's wire contract, the AsyncAPI document
// runtime-jobs-asyncapi.yaml, embedded so that run-time code reads exactly
// the document the code generator read, and a small model of the parts the
// Redis broker and the conformance tests need: channels, their x-redis-stream
// extension, and message payload schemas with local $refs resolved.
package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

//go:embed runtime-jobs-asyncapi.yaml
var contractYAML []byte

// ContractYAML returns the embedded contract as written.
func ContractYAML() []byte { return append([]byte(nil), contractYAML...) }

// Load parses the embedded contract.
func Load() (*Document, error) { return Parse(contractYAML) }

// Stream encodings of the x-redis-stream extension.
const (
	// EncodingFields writes each top-level payload property as one stream field.
	EncodingFields = "fields"
	// EncodingPayload writes the raw payload in one field and each header in
	// its own prefixed field. It is the default for channels without the
	// extension, so the broker serves any asyncapi-codegen contract.
	EncodingPayload = "payload"
)

// Document is the parsed contract.
type Document struct {
	// Version is info.version.
	Version string
	// Channels by channel key (the name under `channels:`).
	Channels map[string]*Channel
	// Shards is the document's x-redis-shards (shard.go), defaults applied.
	Shards Sharding
	// JSON is the whole document converted to JSON, for JSON Schema compilers.
	JSON []byte
}

// Channel is one channel of the contract.
type Channel struct {
	Key     string
	Address string
	Stream  StreamExtension
	// Message is the channel's first message (asyncapi-codegen v0.46.3 only
	// supports the first message of a channel too).
	Message *Message
}

// StreamExtension is the channel's `x-redis-stream` extension.
type StreamExtension struct {
	// Encoding is EncodingFields or EncodingPayload (the default).
	Encoding string `json:"encoding"`
	// Group is the consumer group that reads the channel; empty for channels
	// that are only written, or read without a group.
	Group string `json:"group"`
	// PartitionKey names the payload property whose equal values are never
	// handled concurrently within one process.
	PartitionKey string `json:"partition-key"`
	// MaxLen bounds the stream (XADD MAXLEN ~); 0 means unbounded.
	MaxLen int64 `json:"maxlen"`
	// DeadLetter is the key of the channel that receives entries of this one
	// that cannot be processed.
	DeadLetter string `json:"dead-letter"`
	// ShardedAddress is the channel's key in a sharded layout: the address
	// with ShardPlaceholder where the shard's hash tag goes (shard.go).
	ShardedAddress string `json:"sharded-address"`
}

// Message is one message of the contract.
type Message struct {
	Name string
	// SchemaRef is the JSON pointer of the payload schema in the document, for
	// instance "#/components/schemas/RuntimeStopJob" (empty when inline).
	SchemaRef string
	Payload   *Schema
	Examples  []Example
}

// Example is one entry of a message's `examples`.
type Example struct {
	Name    string         `json:"name"`
	Payload map[string]any `json:"payload"`
}

// Schema is the subset of JSON Schema the broker and the tests read.
type Schema struct {
	Ref         string             `json:"$ref"`
	Type        string             `json:"type"`
	Format      string             `json:"format"`
	Description string             `json:"description"`
	Properties  map[string]*Schema `json:"properties"`
	Required    []string           `json:"required"`
	Enum        []any              `json:"enum"`
	Pattern     string             `json:"pattern"`
	MinLength   *int               `json:"minLength"`
	MaxLength   *int               `json:"maxLength"`
	Minimum     *float64           `json:"minimum"`
	Maximum     *float64           `json:"maximum"`
	// EnumNewChannel maps enum values to the key of the channel whose jobs
	// alone they answer (x-enum-new-channel). The breaking-change gate
	// accepts such a value in a sent message when that channel is new: a
	// released consumer never wrote a job that could be answered with it.
	EnumNewChannel map[string]string `json:"x-enum-new-channel"`
}

// IsRequired reports whether name is in the schema's required list.
func (s *Schema) IsRequired(name string) bool {
	for _, r := range s.Required {
		if r == name {
			return true
		}
	}
	return false
}

// PropertyNames returns the property names in sorted order.
func (s *Schema) PropertyNames() []string {
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ChannelByAddress returns the channel whose address is addr.
func (d *Document) ChannelByAddress(addr string) (*Channel, bool) {
	for _, c := range d.Channels {
		if c.Address == addr {
			return c, true
		}
	}
	return nil, false
}

type rawDocument struct {
	Info struct {
		Version string `json:"version"`
	} `json:"info"`
	Shards   *Sharding `json:"x-redis-shards"`
	Channels map[string]struct {
		Address  string                     `json:"address"`
		Messages map[string]json.RawMessage `json:"messages"`
		Stream   *StreamExtension           `json:"x-redis-stream"`
	} `json:"channels"`
}

// Parse parses a contract (YAML or JSON).
func Parse(doc []byte) (*Document, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("parse contract: %w", err)
	}
	var tree map[string]any
	if err := json.Unmarshal(js, &tree); err != nil {
		return nil, fmt.Errorf("parse contract: %w", err)
	}
	var raw rawDocument
	if err := json.Unmarshal(js, &raw); err != nil {
		return nil, fmt.Errorf("parse contract: %w", err)
	}
	out := &Document{Version: raw.Info.Version, Channels: map[string]*Channel{}, JSON: js}
	if raw.Shards != nil {
		out.Shards = *raw.Shards
	}
	if err := out.Shards.setDefaults(); err != nil {
		return nil, fmt.Errorf("parse contract: x-redis-shards: %w", err)
	}
	for key, rc := range raw.Channels {
		ch := &Channel{Key: key, Address: rc.Address}
		if ch.Address == "" {
			ch.Address = key
		}
		if rc.Stream != nil {
			ch.Stream = *rc.Stream
		}
		switch ch.Stream.Encoding {
		case "":
			ch.Stream.Encoding = EncodingPayload
		case EncodingFields, EncodingPayload:
		default:
			return nil, fmt.Errorf("parse contract: channel %s: unknown x-redis-stream encoding %q", key, ch.Stream.Encoding)
		}
		// Only the first message counts, in name order for determinism.
		names := make([]string, 0, len(rc.Messages))
		for n := range rc.Messages {
			names = append(names, n)
		}
		sort.Strings(names)
		if len(names) > 0 {
			msg, err := parseMessage(tree, rc.Messages[names[0]])
			if err != nil {
				return nil, fmt.Errorf("parse contract: channel %s: %w", key, err)
			}
			ch.Message = msg
		}
		out.Channels[key] = ch
	}
	for key, ch := range out.Channels {
		if dl := ch.Stream.DeadLetter; dl != "" {
			if _, ok := out.Channels[dl]; !ok {
				return nil, fmt.Errorf("parse contract: channel %s: dead-letter channel %q does not exist", key, dl)
			}
		}
		if err := checkShardedAddress(ch); err != nil {
			return nil, fmt.Errorf("parse contract: channel %s: %w", key, err)
		}
		if pk := ch.Stream.PartitionKey; pk != "" {
			if ch.Message == nil || ch.Message.Payload == nil || ch.Message.Payload.Properties[pk] == nil {
				return nil, fmt.Errorf("parse contract: channel %s: partition key %q is not a payload property", key, pk)
			}
		}
	}
	return out, nil
}

func parseMessage(tree map[string]any, rawMsg json.RawMessage) (*Message, error) {
	var node any
	if err := json.Unmarshal(rawMsg, &node); err != nil {
		return nil, err
	}
	node, _, err := resolve(tree, node)
	if err != nil {
		return nil, err
	}
	m, ok := node.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("message is not an object")
	}
	msg := &Message{}
	msg.Name, _ = m["name"].(string)
	if p, ok := m["payload"]; ok {
		if pm, ok := p.(map[string]any); ok {
			msg.SchemaRef, _ = pm["$ref"].(string)
		}
		s, err := buildSchema(tree, p, 0)
		if err != nil {
			return nil, fmt.Errorf("message %s payload: %w", msg.Name, err)
		}
		msg.Payload = s
	}
	if ex, ok := m["examples"]; ok {
		b, _ := json.Marshal(ex)
		if err := json.Unmarshal(b, &msg.Examples); err != nil {
			return nil, fmt.Errorf("message %s examples: %w", msg.Name, err)
		}
	}
	return msg, nil
}

// resolve follows local $refs ("#/a/b") until it reaches a node without one.
func resolve(tree map[string]any, node any) (any, string, error) {
	last := ""
	for i := 0; i < 32; i++ {
		m, ok := node.(map[string]any)
		if !ok {
			return node, last, nil
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return node, last, nil
		}
		if !strings.HasPrefix(ref, "#/") {
			return nil, "", fmt.Errorf("only local $refs are supported, got %q", ref)
		}
		var cur any = tree
		for _, part := range strings.Split(ref[2:], "/") {
			part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
			cm, ok := cur.(map[string]any)
			if !ok {
				return nil, "", fmt.Errorf("$ref %q does not resolve", ref)
			}
			if cur, ok = cm[part]; !ok {
				return nil, "", fmt.Errorf("$ref %q does not resolve", ref)
			}
		}
		node, last = cur, ref
	}
	return nil, "", fmt.Errorf("$ref chain too deep")
}

func buildSchema(tree map[string]any, node any, depth int) (*Schema, error) {
	if depth > 16 {
		return nil, fmt.Errorf("schema nested too deep")
	}
	node, ref, err := resolve(tree, node)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(node)
	if err != nil {
		return nil, err
	}
	var flat struct {
		Schema
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(b, &flat); err != nil {
		return nil, err
	}
	s := flat.Schema
	s.Ref = ref
	s.Properties = nil
	if len(flat.Properties) > 0 {
		s.Properties = make(map[string]*Schema, len(flat.Properties))
		for name, raw := range flat.Properties {
			var child any
			if err := json.Unmarshal(raw, &child); err != nil {
				return nil, err
			}
			cs, err := buildSchema(tree, child, depth+1)
			if err != nil {
				return nil, fmt.Errorf("property %s: %w", name, err)
			}
			s.Properties[name] = cs
		}
	}
	return &s, nil
}
