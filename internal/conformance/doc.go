// Package conformance holds the wire-conformance tests of the contract: the
// field-map fixtures under testdata/contract and every example of
// api/runtime-jobs-asyncapi.yaml run through the real codec
// (redisstream.FieldsToPayload / PayloadToFields), the generated types and
// the contract's own JSON Schemas; and a round trip of every example through
// the generated UserController and AppController over a real redis-server.
// It has no non-test code.
package conformance
