package runtimestore

import (
	"strings"
	"unicode/utf8"

	"galaxy/rtmanager/internal/stopruntime"
)

// encodeResult is json.Marshal(r) as a string, byte for byte, built in one
// allocation: json.Marshal's buffer and its conversion to a string for
// go-redis were two more per stop (TestEncodeResultIsJSONMarshal holds the
// two together).
func encodeResult(r stopruntime.StoredResult) string {
	fields := [...]struct{ name, value string }{
		{`{"outcome":`, string(r.Outcome)},
		{`,"error_code":`, r.ErrorCode},
		{`,"error_message":`, r.ErrorMessage},
		{`,"container_id":`, r.ContainerID},
		{`,"engine_endpoint":`, r.EngineEndpoint},
	}
	n := 1
	for _, f := range fields {
		n += len(f.name) + jsonStringLen(f.value)
	}
	var b strings.Builder
	b.Grow(n)
	for _, f := range fields {
		b.WriteString(f.name)
		writeJSONString(&b, f.value)
	}
	b.WriteByte('}')
	return b.String()
}

// jsonEscape is how encoding/json writes an ASCII byte inside a string:
// "" when it is written as is, else its escape ("\n" style for the five that have one, \u00XX
// for the other control bytes and for <, > and &, which it escapes for
// HTML).
func jsonEscape(c byte) string {
	switch c {
	case '"':
		return `\"`
	case '\\':
		return `\\`
	case '\b':
		return `\b`
	case '\f':
		return `\f`
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	case '<':
		return `\u003c`
	case '>':
		return `\u003e`
	case '&':
		return `\u0026`
	}
	if c < 0x20 {
		// \u0000 to \u001f, six bytes each.
		const ctl = `\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000a\u000b\u000c\u000d\u000e\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f`
		return ctl[6*int(c) : 6*int(c)+6]
	}
	return ""
}

// jsonStringLen is the length of s written by writeJSONString.
func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if e := jsonEscape(c); e != "" {
				n += len(e)
			} else {
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1, r == '\u2028', r == '\u2029':
			n += 6
		default:
			n += size
		}
		i += size
	}
	return n
}

// writeJSONString writes s as encoding/json does: quoted, escaped as
// jsonEscape says, each byte of invalid UTF-8 as \ufffd, and U+2028 and
// U+2029 escaped.
func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if e := jsonEscape(c); e != "" {
				b.WriteString(s[start:i])
				b.WriteString(e)
				start = i + 1
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		var e string
		switch {
		case r == utf8.RuneError && size == 1:
			e = `\ufffd`
		case r == '\u2028':
			e = `\u2028`
		case r == '\u2029':
			e = `\u2029`
		}
		if e != "" {
			b.WriteString(s[start:i])
			b.WriteString(e)
			start = i + size
		}
		i += size
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}
