package api_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
)

// The vectors were computed outside Go (testdata/contract/shards.json says
// how); Lobby's side tests against the same file.
func TestShardMatchesTheContractsVectors(t *testing.T) {
	raw, err := os.ReadFile("../testdata/contract/shards.json")
	require.NoError(t, err)
	var file struct {
		Vectors []struct {
			GameID string `json:"game_id"`
			CRC16  uint16 `json:"crc16"`
			Of3    int    `json:"shard_of_3"`
			Of16   int    `json:"shard_of_16"`
			Of1024 int    `json:"shard_of_1024"`
		} `json:"vectors"`
	}
	require.NoError(t, json.Unmarshal(raw, &file))
	require.NotEmpty(t, file.Vectors)
	for _, v := range file.Vectors {
		assert.Equal(t, v.CRC16, api.CRC16([]byte(v.GameID)), v.GameID)
		assert.Equal(t, v.Of3, api.Shard(v.GameID, 3), v.GameID)
		assert.Equal(t, v.Of16, api.Shard(v.GameID, 16), v.GameID)
		assert.Equal(t, v.Of1024, api.Shard(v.GameID, 1024), v.GameID)
		assert.Equal(t, 0, api.Shard(v.GameID, 1), v.GameID)
	}
}

func TestLayoutKeys(t *testing.T) {
	doc, err := api.Load()
	require.NoError(t, err)
	assert.Equal(t, api.Sharding{Count: 1, Tag: "rt-"}, doc.Shards)
	stop := doc.Channels["stopJobs"]

	single, err := api.NewLayout(doc, 0, false)
	require.NoError(t, err)
	assert.False(t, single.Sharded, "a single Redis with one shard keeps the addresses")
	assert.Equal(t, []string{"runtime:stop_jobs"}, single.Keys(stop))
	assert.Empty(t, single.HashTag(0))

	onCluster, err := api.NewLayout(doc, 0, true)
	require.NoError(t, err)
	assert.Equal(t, []string{"runtime:{rt-0}:stop_jobs"}, onCluster.Keys(stop))

	s16, err := api.NewLayout(doc, 16, false)
	require.NoError(t, err)
	keys := s16.Keys(stop)
	require.Len(t, keys, 16)
	assert.Equal(t, "runtime:{rt-15}:stop_jobs", keys[15])
	assert.Equal(t, "runtime:{rt-3}:job_results", s16.Key(doc.Channels["jobResults"], 3))
	assert.Equal(t, "runtime:{rt-3}:stop_jobs:dead", s16.Key(doc.Channels["stopJobsDead"], 3))
	assert.Equal(t, "{rt-3}", s16.HashTag(3))
	for n, k := range keys {
		got, err := s16.ShardOfKey(stop, k)
		require.NoError(t, err)
		assert.Equal(t, n, got)
	}
	for _, bad := range []string{"runtime:stop_jobs", "runtime:{rt-16}:stop_jobs", "runtime:{rt-03}:stop_jobs", "runtime:{rt-3}:stop_jobs:dead", "runtime:{rt--1}:stop_jobs"} {
		_, err := s16.ShardOfKey(stop, bad)
		require.Error(t, err, bad)
	}
	assert.Equal(t, api.Shard("game-1", 16), s16.ShardOf("game-1"))

	_, err = api.NewLayout(doc, api.MaxShardCount+1, false)
	require.Error(t, err)
	_, err = api.NewLayout(doc, -1, false)
	require.Error(t, err)
}

func TestParseRefusesBrokenSharding(t *testing.T) {
	base := func(shards, addr string) []byte {
		return []byte(`asyncapi: 3.0.0
info: {title: t, version: 1.0.0}
` + shards + `
channels:
  jobs:
    address: a:jobs
    x-redis-stream:
      sharded-address: '` + addr + `'
`)
	}
	for name, doc := range map[string][]byte{
		"no placeholder":     base("", "a:jobs"),
		"two placeholders":   base("", "a:{shard}:{shard}"),
		"a brace before":     base("", "{a}:{shard}:jobs"),
		"count too large":    base("x-redis-shards: {count: 16385}", "a:{shard}:jobs"),
		"negative count":     base("x-redis-shards: {count: -2}", "a:{shard}:jobs"),
		"a brace in the tag": base("x-redis-shards: {tag: 'r{'}", "a:{shard}:jobs"),
		"white space in tag": base("x-redis-shards: {tag: 'r t'}", "a:{shard}:jobs"),
	} {
		_, err := api.Parse(doc)
		require.Error(t, err, name)
	}
	doc, err := api.Parse(base("x-redis-shards: {count: 4, tag: g-}", "a:{shard}:jobs"))
	require.NoError(t, err)
	l, err := api.NewLayout(doc, 0, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"a:{g-0}:jobs", "a:{g-1}:jobs", "a:{g-2}:jobs", "a:{g-3}:jobs"}, l.Keys(doc.Channels["jobs"]))

	// A channel without a sharded address cannot be sharded.
	plain, err := api.Parse([]byte("asyncapi: 3.0.0\ninfo: {title: t, version: 1.0.0}\nchannels:\n  jobs:\n    address: a:jobs\n"))
	require.NoError(t, err)
	_, err = api.NewLayout(plain, 2, false)
	require.ErrorContains(t, err, "sharded-address")
	l, err = api.NewLayout(plain, 1, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"a:jobs"}, l.Keys(plain.Channels["jobs"]))
}
