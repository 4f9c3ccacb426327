package process

import (
	"io/fs"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseStatOddCommandName(t *testing.T) {
	// A command name with spaces and ')' must not shift the fields.
	line := "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 " +
		"18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	st, err := parseStat([]byte(line))
	require.NoError(t, err)
	require.Equal(t, uint64(987654), st.start)
	require.False(t, st.zombie)

	st, err = parseStat([]byte("7 (x) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0\n"))
	require.NoError(t, err)
	require.True(t, st.zombie)
	require.Equal(t, uint64(55), st.start)

	_, err = parseStat([]byte("garbage"))
	require.Error(t, err)
}

func TestParseUIDs(t *testing.T) {
	u, err := parseUIDs([]byte("Name:\tsleep\nPPid:\t1\nUid:\t1000\t1000\t0\t1000\nGid:\t5\t5\t5\t5\n"))
	require.NoError(t, err)
	require.Equal(t, []int{1000, 1000, 0, 1000}, u)
	_, err = parseUIDs([]byte("Name:\tx\n"))
	require.Error(t, err)
	_, err = parseUIDs([]byte("Uid:\tx\n"))
	require.Error(t, err)
}

// readStat reads what os.ReadFile reads, and a missing process is
// fs.ErrNotExist.
func TestReadStatMatchesTheFile(t *testing.T) {
	b, err := os.ReadFile("/proc/self/stat")
	require.NoError(t, err)
	want, err := parseStat(b)
	require.NoError(t, err)
	got, err := readStat("/proc", os.Getpid())
	require.NoError(t, err)
	require.Equal(t, want.start, got.start)

	_, err = readStat("/proc", 1<<22+17)
	require.ErrorIs(t, err, fs.ErrNotExist)
}
