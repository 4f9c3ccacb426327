// Package contractschema validates message payloads against the JSON Schema
// of their channel's message, taken from the contract itself
// (api/runtime-jobs-asyncapi.yaml): there is no copy of any schema to drift
// from the document the code generator and the broker read.
package contractschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"galaxy/rtmanager/api"
)

// ErrUnknownChannel is returned by Validate for an address that is not a
// channel of the contract, or a channel without a payload schema.
var ErrUnknownChannel = errors.New("no payload schema for channel")

// contractURL names the contract as a JSON Schema resource; the compiler
// never fetches it, it is only the base of the $refs.
const contractURL = "urn:rtmanager:runtime-jobs-asyncapi.json"

// Validator holds the compiled payload schema of every channel, by address.
// It is safe for concurrent use.
type Validator struct {
	byAddress map[string]compiled
}

type compiled struct {
	ref    string
	schema *jsonschema.Schema
}

// Load compiles the payload schemas of the embedded contract.
func Load() (*Validator, error) {
	doc, err := api.Load()
	if err != nil {
		return nil, fmt.Errorf("load contract: %w", err)
	}
	return New(doc)
}

// New compiles, once, the payload schema of each channel's message of doc.
// Only payloads given by a $ref into the document are supported: that keeps
// every schema addressable inside the one contract resource.
func New(doc *api.Document) (*Validator, error) {
	tree, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc.JSON))
	if err != nil {
		return nil, fmt.Errorf("read contract JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	// AsyncAPI reuses `format` for type widths (int64) that JSON Schema does
	// not know; under draft 2020-12, unlike draft-07, formats are annotations
	// unless asked for, so none is asserted. AssertFormat is never called.
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(contractURL, tree); err != nil {
		return nil, fmt.Errorf("add contract as schema resource: %w", err)
	}
	v := &Validator{byAddress: make(map[string]compiled, len(doc.Channels))}
	for _, key := range sortedKeys(doc.Channels) {
		ch := doc.Channels[key]
		if ch.Message == nil || ch.Message.Payload == nil {
			continue
		}
		ref := ch.Message.SchemaRef
		if ref == "" {
			return nil, fmt.Errorf("compile payload schema of channel %s: the payload must be a $ref to a schema of the document", key)
		}
		sch, err := c.Compile(contractURL + ref)
		if err != nil {
			return nil, fmt.Errorf("compile payload schema %s of channel %s: %w", ref, key, err)
		}
		v.byAddress[ch.Address] = compiled{ref: ref, schema: sch}
	}
	return v, nil
}

// Addresses returns the channel addresses that have a payload schema, sorted.
func (v *Validator) Addresses() []string {
	return sortedKeys(v.byAddress)
}

// Validate checks payload against the payload schema of the channel whose
// address is channelAddress. The error names the channel and the schema and
// carries the validator's reasons (a *jsonschema.ValidationError in its
// chain).
func (v *Validator) Validate(channelAddress string, payload map[string]any) error {
	c, ok := v.byAddress[channelAddress]
	if !ok {
		return fmt.Errorf("validate payload for %q: %w", channelAddress, ErrUnknownChannel)
	}
	// A JSON round trip turns whatever Go values the caller used (int64,
	// typed strings, structs) into the JSON data model the validator expects.
	raw, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("validate payload for %s: encode payload: %w", channelAddress, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("validate payload for %s: decode payload: %w", channelAddress, err)
	}
	if err := c.schema.Validate(inst); err != nil {
		return fmt.Errorf("payload for %s does not match %s: %w", channelAddress, c.ref, err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
