package stopjobs

import (
	"strconv"
	"unicode/utf8"
)

// maxLoggedValue bounds each job-supplied value in a log line: a producer
// may send 64 KiB per field, and a log line per job must stay small.
const maxLoggedValue = 256

// clip shortens s for a log line, keeping valid UTF-8, with a marker that
// gives the original length: "abc…(65000 bytes)".
func clip(s string) string {
	if len(s) <= maxLoggedValue {
		return s
	}
	cut := maxLoggedValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
