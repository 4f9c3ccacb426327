package testredis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterOptions configure a local Redis Cluster.
type ClusterOptions struct {
	// Masters is the number of masters; default 3 (Redis's minimum).
	Masters int
	// ReplicasPerMaster is the number of replicas of each master; 0 means
	// none (no failover).
	ReplicasPerMaster int
	// NodeTimeout is cluster-node-timeout: how long a node may be silent
	// before it is failed over. Default 1s, short for tests.
	NodeTimeout time.Duration
	// Args are further config directives for every node.
	Args []string
	// ReadyTimeout bounds the wait for the cluster to be ready; default 30s.
	ReadyTimeout time.Duration
}

// Cluster is a local Redis Cluster of real redis-servers on loopback ports,
// each in its own directory. The slots are built by hand (ADDSLOTSRANGE,
// MEET, REPLICATE) rather than by redis-cli --cluster create, which polls
// once a second.
type Cluster struct {
	opts  ClusterOptions
	nodes []*ClusterNode
}

// ClusterNode is one node of a Cluster. Kill, Stop and Restart are those of
// Server; a restarted node keeps its nodes.conf and rejoins.
type ClusterNode struct {
	*Server
	id string
}

// ID is the node's cluster id.
func (n *ClusterNode) ID() string { return n.id }

// StartCluster starts a cluster for the test and removes it when the test
// ends.
func StartCluster(tb TB, opts ClusterOptions) *Cluster {
	tb.Helper()
	c, err := NewCluster(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// NewCluster starts a cluster and waits until every node says
// cluster_state:ok and every replica is in sync with its master.
func NewCluster(opts ClusterOptions) (*Cluster, error) {
	if opts.Masters <= 0 {
		opts.Masters = 3
	}
	if opts.NodeTimeout <= 0 {
		opts.NodeTimeout = time.Second
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	c := &Cluster{opts: opts}
	total := opts.Masters * (1 + opts.ReplicasPerMaster)
	args := append([]string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.FormatInt(opts.NodeTimeout.Milliseconds(), 10),
		// A replica's first sync starts at once, not after the default 5s
		// wait for more replicas to share it.
		"--repl-diskless-sync-delay", "0",
	}, opts.Args...)
	for range total {
		s, err := New(Options{Args: args})
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("testredis: start cluster node: %w", err)
		}
		c.nodes = append(c.nodes, &ClusterNode{Server: s})
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.ReadyTimeout)
	defer cancel()
	if err := c.form(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// form assigns the slots, joins the nodes and attaches the replicas.
func (c *Cluster) form(ctx context.Context) error {
	m := c.opts.Masters
	for i, n := range c.nodes {
		id, err := do(ctx, n, "cluster", "myid")
		if err != nil {
			return fmt.Errorf("testredis: cluster myid: %w", err)
		}
		n.id = id.(string)
		// Distinct epochs up front, so no collision has to be resolved.
		if _, err := do(ctx, n, "cluster", "set-config-epoch", i+1); err != nil {
			return fmt.Errorf("testredis: set config epoch: %w", err)
		}
		if i < m {
			lo, hi := i*16384/m, (i+1)*16384/m-1
			if _, err := do(ctx, n, "cluster", "addslotsrange", lo, hi); err != nil {
				return fmt.Errorf("testredis: add slots %d-%d: %w", lo, hi, err)
			}
		}
	}
	for _, n := range c.nodes[1:] {
		if _, err := do(ctx, c.nodes[0], "cluster", "meet", "127.0.0.1", n.Port()); err != nil {
			return fmt.Errorf("testredis: cluster meet: %w", err)
		}
	}
	if err := c.waitFor(ctx, "every node to know every other", func(ctx context.Context, n *ClusterNode) (bool, error) {
		nodes, err := clusterNodes(ctx, n)
		if err != nil {
			return false, err
		}
		known := 0
		for _, e := range nodes {
			if !e.has("handshake") && !e.has("noaddr") {
				known++
			}
		}
		return known == len(c.nodes), nil
	}); err != nil {
		return err
	}
	for j, n := range c.nodes[m:] {
		master := c.nodes[j/c.opts.ReplicasPerMaster]
		if _, err := do(ctx, n, "cluster", "replicate", master.id); err != nil {
			return fmt.Errorf("testredis: cluster replicate: %w", err)
		}
	}
	return c.WaitReady(ctx)
}

// WaitReady waits until every running node says cluster_state:ok, sees the
// same masters and replicas, and every running replica is in sync.
func (c *Cluster) WaitReady(ctx context.Context) error {
	return c.waitFor(ctx, "the cluster to be ready", func(ctx context.Context, n *ClusterNode) (bool, error) {
		info, err := do(ctx, n, "cluster", "info")
		if err != nil {
			return false, err
		}
		if !strings.Contains(info.(string), "cluster_state:ok") {
			return false, nil
		}
		nodes, err := clusterNodes(ctx, n)
		if err != nil {
			return false, err
		}
		masters := 0
		for _, e := range nodes {
			if e.has("fail") || e.has("fail?") {
				// A node this one still thinks failed must be down.
				if c.byID(e.id) != nil && c.byID(e.id).Running() {
					return false, nil
				}
				continue
			}
			if e.has("master") && e.slots {
				masters++
			}
		}
		if masters != c.opts.Masters {
			return false, nil
		}
		repl, err := do(ctx, n, "info", "replication")
		if err != nil {
			return false, err
		}
		r := repl.(string)
		if strings.Contains(r, "role:slave") {
			return strings.Contains(r, "master_link_status:up") && strings.Contains(r, "master_sync_in_progress:0"), nil
		}
		return true, nil
	})
}

// waitFor polls ok on every running node until all say true.
func (c *Cluster) waitFor(ctx context.Context, what string, ok func(context.Context, *ClusterNode) (bool, error)) error {
	var last error
	for {
		all := true
		for _, n := range c.nodes {
			if !n.Running() {
				continue
			}
			good, err := ok(ctx, n)
			if err != nil {
				last = err
			}
			if !good {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("testredis: waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("testredis: waiting for %s: %w", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Nodes are all nodes, masters first as started (roles change on failover).
func (c *Cluster) Nodes() []*ClusterNode { return c.nodes }

// Addrs are the host:port of every node.
func (c *Cluster) Addrs() []string {
	a := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		a[i] = n.Addr()
	}
	return a
}

// URL is a redis+cluster:// seed URL naming every node.
func (c *Cluster) URL() string {
	q := url.Values{}
	for _, a := range c.Addrs()[1:] {
		q.Add("addr", a)
	}
	return "redis+cluster://" + c.nodes[0].Addr() + "?" + q.Encode()
}

// Client returns a new plain go-redis cluster client; the caller closes it.
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
}

// MasterOf is the node that serves key now, as a running node sees it.
func (c *Cluster) MasterOf(ctx context.Context, key string) (*ClusterNode, error) {
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		m, err := c.masterOfOn(ctx, n, key)
		if err != nil {
			continue
		}
		return m, nil
	}
	return nil, errors.New("testredis: no running node knows the master of " + key)
}

func (c *Cluster) masterOfOn(ctx context.Context, n *ClusterNode, key string) (*ClusterNode, error) {
	v, err := do(ctx, n, "cluster", "keyslot", key)
	if err != nil {
		return nil, err
	}
	slot := int(v.(int64))
	nodes, err := clusterNodes(ctx, n)
	if err != nil {
		return nil, err
	}
	for _, e := range nodes {
		if e.has("master") && !e.has("fail") && e.serves(slot) {
			if m := c.byID(e.id); m != nil {
				return m, nil
			}
		}
	}
	return nil, fmt.Errorf("testredis: node %s knows no live master of slot %d", n.Addr(), slot)
}

// FailoverKey kills -9 the master serving key and waits until one of its
// replicas took over (WaitPromoted). It returns the killed and the new
// master; the killed node stays down (Restart brings it back as a replica).
func (c *Cluster) FailoverKey(ctx context.Context, key string) (killed, promoted *ClusterNode, err error) {
	old, err := c.MasterOf(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	if err := old.Kill(); err != nil {
		return nil, nil, err
	}
	promoted, err = c.WaitPromoted(ctx, key, old)
	return old, promoted, err
}

// WaitPromoted waits until every running node names a master of key other
// than old and the cluster is ready again, and returns that master.
func (c *Cluster) WaitPromoted(ctx context.Context, key string, old *ClusterNode) (*ClusterNode, error) {
	var promoted *ClusterNode
	err := c.waitFor(ctx, "a replica to take over "+key, func(ctx context.Context, n *ClusterNode) (bool, error) {
		m, err := c.masterOfOn(ctx, n, key)
		if err != nil {
			return false, nil //nolint:nilerr // not decided yet: keep waiting
		}
		if m == old {
			return false, nil
		}
		promoted = m
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return promoted, c.WaitReady(ctx)
}

// Close kills every node and removes their directories.
func (c *Cluster) Close() error {
	var first error
	for _, n := range c.nodes {
		if err := n.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (c *Cluster) byID(id string) *ClusterNode {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// do sends one command to n on a short-lived connection, so a killed node
// leaves no pooled client behind.
func do(ctx context.Context, n *ClusterNode, args ...any) (any, error) {
	cl := redis.NewClient(&redis.Options{Addr: n.Addr(), MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second, PoolSize: 1})
	defer cl.Close()
	return cl.Do(ctx, args...).Result()
}

// nodeEntry is one line of CLUSTER NODES.
type nodeEntry struct {
	id     string
	flags  []string
	slots  bool
	ranges [][2]int
}

func (e nodeEntry) has(flag string) bool {
	for _, f := range e.flags {
		if f == flag {
			return true
		}
	}
	return false
}

func (e nodeEntry) serves(slot int) bool {
	for _, r := range e.ranges {
		if slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

func clusterNodes(ctx context.Context, n *ClusterNode) ([]nodeEntry, error) {
	v, err := do(ctx, n, "cluster", "nodes")
	if err != nil {
		return nil, err
	}
	var out []nodeEntry
	for _, line := range strings.Split(strings.TrimSpace(v.(string)), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			continue
		}
		e := nodeEntry{id: f[0], flags: strings.Split(strings.ReplaceAll(f[2], "myself,", ""), ",")}
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") { // a slot being migrated
				continue
			}
			lo, hi, ok := strings.Cut(s, "-")
			if !ok {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 == nil && err2 == nil {
				e.ranges = append(e.ranges, [2]int{a, b})
			}
		}
		e.slots = len(e.ranges) > 0
		out = append(out, e)
	}
	return out, nil
}

// WaitReplicated waits until every replica of master has every write the
// master had when it was called. Replication is asynchronous: a test that
// kills a master and expects its writes on the promoted replica calls this
// first (a real crash gives no such wait, and loses what was not copied).
func (c *Cluster) WaitReplicated(ctx context.Context, master *ClusterNode) error {
	target := int64(-1)
	for {
		v, err := do(ctx, master, "info", "replication")
		if err != nil {
			return fmt.Errorf("replication of %s: %w", master.Addr(), err)
		}
		info, _ := v.(string)
		offset, replicas, done := int64(0), 0, true
		for _, line := range strings.Split(info, "\r\n") {
			if s, ok := strings.CutPrefix(line, "master_repl_offset:"); ok {
				offset, _ = strconv.ParseInt(s, 10, 64)
			}
		}
		if target < 0 {
			target = offset
		}
		for _, line := range strings.Split(info, "\r\n") {
			if !strings.HasPrefix(line, "slave") || !strings.Contains(line, "offset=") {
				continue
			}
			replicas++
			_, rest, _ := strings.Cut(line, "offset=")
			got, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
			if got < target {
				done = false
			}
		}
		if replicas > 0 && done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replicas of %s did not reach offset %d: %w", master.Addr(), target, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
