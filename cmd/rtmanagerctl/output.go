package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/stopruntime"
)

// sendView is the --json output of send-stop; Result only with --wait (null
// when none arrived).
type sendView struct {
	JobID  string      `json:"job_id"`
	Result *resultView `json:"result,omitempty"`
}

// resultView is one entry of runtime:job_results: its stream id and the
// contract's fields.
type resultView struct {
	ID string `json:"id"`
	// Shard is the shard whose stream holds the entry; only when sharded.
	Shard *int `json:"shard,omitempty"`
	runtimejobs.RuntimeJobResultSchema
}

func toResultView(m redis.XMessage) resultView {
	return resultView{ID: m.ID, RuntimeJobResultSchema: runtimejobs.RuntimeJobResultSchema{
		JobId:          str(m.Values, "job_id"),
		GameId:         str(m.Values, "game_id"),
		Operation:      str(m.Values, "operation"),
		Outcome:        str(m.Values, "outcome"),
		ErrorCode:      str(m.Values, "error_code"),
		ErrorMessage:   str(m.Values, "error_message"),
		ContainerId:    str(m.Values, "container_id"),
		EngineEndpoint: str(m.Values, "engine_endpoint"),
		CompletedAtMs:  toInt(m.Values, "completed_at_ms"),
	}}
}

// recordView is a runtime record with the field names of its Redis hash.
type recordView struct {
	GameID          string                    `json:"game_id"`
	Status          string                    `json:"status"`
	Runtime         string                    `json:"runtime"`
	ContainerID     string                    `json:"container_id"`
	EngineEndpoint  string                    `json:"engine_endpoint"`
	UpdatedAtMS     int64                     `json:"updated_at_ms"`
	LastJobID       string                    `json:"last_job_id"`
	LastResult      *stopruntime.StoredResult `json:"last_result"`
	StoppingJobID   string                    `json:"stopping_job_id"`
	StoppingSinceMS int64                     `json:"stopping_since_ms"`
	// Start jobs.
	Engine          string                    `json:"engine"`
	StartingJobID   string                    `json:"starting_job_id"`
	StartingSinceMS int64                     `json:"starting_since_ms"`
	LastStartJobID  string                    `json:"last_start_job_id"`
	LastStartResult *stopruntime.StoredResult `json:"last_start_result"`
	// Runtime watch: how the runtime ended on its own, or why it is unhealthy.
	ExitCode         *int64 `json:"exit_code,omitempty"`
	OOMKilled        bool   `json:"oom_killed,omitempty"`
	FinishedAtMS     int64  `json:"finished_at_ms,omitempty"`
	FailureReason    string `json:"failure_reason,omitempty"`
	UnhealthySinceMS int64  `json:"unhealthy_since_ms,omitempty"`
}

type consumerView struct {
	Name    string `json:"name"`
	Pending int64  `json:"pending"`
}

type pendingEntryView struct {
	ID string `json:"id"`
	// Shard is the shard whose stream holds the entry; only when sharded.
	Shard      *int   `json:"shard,omitempty"`
	Consumer   string `json:"consumer"`
	IdleMS     int64  `json:"idle_ms"`
	Deliveries int64  `json:"deliveries"`
}

// pendingView is the output of pending: the XPENDING summary, the group's
// XINFO GROUPS line (lag -1: Redis cannot tell) and the oldest pending entries.
type pendingView struct {
	Stream          string             `json:"stream"`
	Group           string             `json:"group"`
	Pending         int64              `json:"pending"`
	Lowest          string             `json:"lowest_id"`
	Highest         string             `json:"highest_id"`
	Consumers       []consumerView     `json:"consumers"`
	GroupConsumers  int64              `json:"group_consumers"`
	LastDeliveredID string             `json:"last_delivered_id"`
	EntriesRead     int64              `json:"entries_read"`
	Lag             int64              `json:"lag"`
	Oldest          []pendingEntryView `json:"oldest"`
	// Sharded only (sumPending): the shard count and each shard's group.
	ShardCount int                `json:"shard_count,omitempty"`
	Shards     []pendingShardView `json:"shards,omitempty"`
}

// pendingShardView is the group on one shard's key.
type pendingShardView struct {
	Shard           int            `json:"shard"`
	Stream          string         `json:"stream"`
	Pending         int64          `json:"pending"`
	Lowest          string         `json:"lowest_id"`
	Highest         string         `json:"highest_id"`
	Consumers       []consumerView `json:"consumers"`
	GroupConsumers  int64          `json:"group_consumers"`
	LastDeliveredID string         `json:"last_delivered_id"`
	EntriesRead     int64          `json:"entries_read"`
	Lag             int64          `json:"lag"`
}

// deadView is one dead letter: its stream id, the contract's dead-letter
// fields, what the broker left out of the copy (dead_truncated: then it is
// not replayable) and the original fields a replay writes.
type deadView struct {
	ID string `json:"id"`
	// Shard is the shard whose dead stream holds the letter; only when
	// sharded.
	Shard *int `json:"shard,omitempty"`
	runtimejobs.RuntimeStopJobDeadLetterSchema
	Truncated string            `json:"dead_truncated,omitempty"`
	GameID    string            `json:"game_id"`
	Reason    string            `json:"reason"`
	Fields    map[string]string `json:"fields"`
}

func toDeadView(m redis.XMessage) deadView {
	dl := redisstream.ReadDeadLetter(m.Values)
	return deadView{
		ID: m.ID,
		RuntimeStopJobDeadLetterSchema: runtimejobs.RuntimeStopJobDeadLetterSchema{
			DeadReason: dl.Reason, DeadError: dl.Error, OriginalId: dl.OriginalID,
			DeliveryCount: dl.DeliveryCount, DeadAtMs: dl.DeadAtMS,
		},
		Truncated: dl.Truncated, GameID: dl.Original["game_id"], Reason: dl.Original["reason"], Fields: dl.Original,
	}
}

// replayView is one replayed dead letter and the id of its new job.
type replayView struct {
	DeadID string `json:"dead_id"`
	// Shard is the shard of the dead letter and of its new job; only when
	// sharded.
	Shard      *int   `json:"shard,omitempty"`
	OriginalID string `json:"original_id"`
	JobID      string `json:"job_id"`
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func writeJSONLine(w io.Writer, v any) error {
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func flush(tw *tabwriter.Writer) error {
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// msTime renders Unix milliseconds as UTC time; "-" for 0.
func msTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// shardHeader is the SHARD column's header cell, empty when not sharded.
func shardHeader(sharded bool) string {
	if !sharded {
		return ""
	}
	return "SHARD\t"
}

// shardCell is a SHARD column's cell: empty (no column) for nil.
func shardCell(shard *int) string {
	if shard == nil {
		return ""
	}
	return strconv.Itoa(*shard) + "\t"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printResults prints a table of results; sharded adds a SHARD column after
// the ID (an entry id is unique in its shard's stream only).
func printResults(w io.Writer, views []resultView, header, sharded bool) error {
	tw := table(w)
	if header {
		fmt.Fprintln(tw, "ID\t"+shardHeader(sharded)+"JOB\tGAME\tOUTCOME\tERROR_CODE\tCONTAINER\tENDPOINT\tCOMPLETED\tMESSAGE")
	}
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, shardCell(v.Shard), dash(v.JobId), dash(v.GameId), dash(v.Outcome),
			dash(v.ErrorCode), dash(v.ContainerId), dash(v.EngineEndpoint), msTime(v.CompletedAtMs), dash(v.ErrorMessage))
	}
	return flush(tw)
}

func (a *app) printRecord(rec stopruntime.Record) error {
	v := recordView{
		GameID: rec.GameID, Status: rec.Status, Runtime: rec.Runtime, ContainerID: rec.ContainerID,
		EngineEndpoint: rec.EngineEndpoint, UpdatedAtMS: rec.UpdatedAtMS, LastJobID: rec.LastJobID,
		StoppingJobID: rec.StoppingJobID, StoppingSinceMS: rec.StoppingSinceMS,
		Engine: rec.Engine, StartingJobID: rec.StartingJobID, StartingSinceMS: rec.StartingSinceMS,
		LastStartJobID: rec.LastStartJobID,
		ExitCode:       rec.ExitCode, OOMKilled: rec.OOMKilled, FinishedAtMS: rec.FinishedAtMS,
		FailureReason: rec.FailureReason, UnhealthySinceMS: rec.UnhealthySinceMS,
	}
	if rec.LastStartJobID != "" {
		lr := rec.LastStartResult
		v.LastStartResult = &lr
	}
	if rec.LastJobID != "" || rec.LastResult != (stopruntime.StoredResult{}) {
		lr := rec.LastResult
		v.LastResult = &lr
	}
	if a.g.json {
		return writeJSON(a.stdout, v)
	}
	tw := table(a.stdout)
	row := func(k, val string) { fmt.Fprintf(tw, "%s\t%s\n", k, val) }
	row("game_id", v.GameID)
	row("status", v.Status)
	row("engine", dash(v.Engine))
	row("runtime", dash(v.Runtime))
	row("container_id", dash(v.ContainerID))
	row("engine_endpoint", dash(v.EngineEndpoint))
	row("updated_at", msTime(v.UpdatedAtMS))
	row("last_job_id", dash(v.LastJobID))
	if lr := v.LastResult; lr != nil {
		row("last_result", fmt.Sprintf("%s %s %s", lr.Outcome, dash(lr.ErrorCode), lr.ErrorMessage))
		row("last_result.container_id", dash(lr.ContainerID))
		row("last_result.engine_endpoint", dash(lr.EngineEndpoint))
	} else {
		row("last_result", "-")
	}
	row("stopping_job_id", dash(v.StoppingJobID))
	row("stopping_since", msTime(v.StoppingSinceMS))
	row("starting_job_id", dash(v.StartingJobID))
	row("starting_since", msTime(v.StartingSinceMS))
	row("last_start_job_id", dash(v.LastStartJobID))
	if lr := v.LastStartResult; lr != nil {
		row("last_start_result", fmt.Sprintf("%s %s %s", lr.Outcome, dash(lr.ErrorCode), lr.ErrorMessage))
	} else {
		row("last_start_result", "-")
	}
	exit := "-"
	if v.ExitCode != nil {
		exit = strconv.FormatInt(*v.ExitCode, 10)
	}
	if v.OOMKilled {
		exit += " (killed for lack of memory)"
	}
	row("exit_code", exit)
	row("finished_at", msTime(v.FinishedAtMS))
	row("unhealthy_since", msTime(v.UnhealthySinceMS))
	row("failure_reason", dash(v.FailureReason))
	return flush(tw)
}

func printPending(w io.Writer, v pendingView) error {
	tw := table(w)
	sharded := v.ShardCount > 0
	if sharded {
		fmt.Fprintf(tw, "stream\t%s (%d shards)\n", v.Stream, v.ShardCount)
	} else {
		fmt.Fprintf(tw, "stream\t%s\n", v.Stream)
	}
	fmt.Fprintf(tw, "group\t%s\n", v.Group)
	fmt.Fprintf(tw, "pending\t%d\n", v.Pending)
	if v.Pending > 0 {
		fmt.Fprintf(tw, "pending ids\t%s .. %s\n", v.Lowest, v.Highest)
	}
	fmt.Fprintf(tw, "lag (not yet delivered)\t%s\n", lagText(v.Lag))
	if sharded {
		// Delivery ids are per shard: see the shard table.
		fmt.Fprintf(tw, "entries read\t%d\n", v.EntriesRead)
		fmt.Fprintf(tw, "consumers (most on one shard)\t%d\n", v.GroupConsumers)
	} else {
		fmt.Fprintf(tw, "last delivered id\t%s\n", v.LastDeliveredID)
		fmt.Fprintf(tw, "entries read\t%d\n", v.EntriesRead)
		fmt.Fprintf(tw, "consumers\t%d\n", v.GroupConsumers)
	}
	if err := flush(tw); err != nil {
		return err
	}
	if len(v.Consumers) > 0 {
		fmt.Fprintln(w)
		tw = table(w)
		fmt.Fprintln(tw, "CONSUMER\tPENDING")
		for _, c := range v.Consumers {
			fmt.Fprintf(tw, "%s\t%d\n", c.Name, c.Pending)
		}
		if err := flush(tw); err != nil {
			return err
		}
	}
	if sharded {
		if err := printPendingShards(w, v.Shards); err != nil {
			return err
		}
	}
	if len(v.Oldest) > 0 {
		fmt.Fprintln(w)
		tw = table(w)
		fmt.Fprintln(tw, "OLDEST PENDING\t"+shardHeader(sharded)+"CONSUMER\tIDLE\tDELIVERIES")
		for _, e := range v.Oldest {
			fmt.Fprintf(tw, "%s\t%s%s\t%s\t%d\n", e.ID, shardCell(e.Shard), e.Consumer,
				(time.Duration(e.IdleMS) * time.Millisecond).String(), e.Deliveries)
		}
		return flush(tw)
	}
	return nil
}

// printPendingShards lists the shards with entries pending or not yet
// delivered; the others (all of them, when the group is idle) are counted.
func printPendingShards(w io.Writer, shards []pendingShardView) error {
	busy := 0
	for _, s := range shards {
		if s.Pending > 0 || s.Lag != 0 {
			busy++
		}
	}
	fmt.Fprintln(w)
	if busy > 0 {
		tw := table(w)
		fmt.Fprintln(tw, "SHARD\tSTREAM\tPENDING\tLAG\tLAST DELIVERED\tENTRIES READ\tCONSUMERS")
		for _, s := range shards {
			if s.Pending > 0 || s.Lag != 0 {
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%d\t%d\n", s.Shard, s.Stream, s.Pending, lagText(s.Lag),
					s.LastDeliveredID, s.EntriesRead, s.GroupConsumers)
			}
		}
		if err := flush(tw); err != nil {
			return err
		}
	}
	if idle := len(shards) - busy; idle > 0 {
		if _, err := fmt.Fprintf(w, "(%d of %d shards: nothing pending, lag 0)\n", idle, len(shards)); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	return nil
}

// lagText is a group's lag; -1 is Redis saying it cannot tell.
func lagText(lag int64) string {
	if lag < 0 {
		return "unknown"
	}
	return strconv.FormatInt(lag, 10)
}

// printDead prints dead letters; sharded adds a SHARD column after the ID.
func printDead(w io.Writer, views []deadView, total int64, sharded bool) error {
	if len(views) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "ID\t"+shardHeader(sharded)+"ORIGINAL_ID\tDEAD_REASON\tDELIVERIES\tGAME\tREASON\tDEAD_AT\tDEAD_ERROR")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%d\t%s\t%s\t%s\t%s\n", v.ID, shardCell(v.Shard), dash(v.OriginalId), dash(v.DeadReason),
			v.DeliveryCount, dash(v.GameID), dash(v.Reason), msTime(v.DeadAtMs), dash(v.DeadError))
	}
	if err := flush(tw); err != nil {
		return err
	}
	if int64(len(views)) < total {
		_, err := fmt.Fprintf(w, "(%d of %d; raise --count to see more)\n", len(views), total)
		return err
	}
	return nil
}

// printReplays prints replayed letters; sharded adds a SHARD column (the
// shard of both the dead letter and its new job) after the DEAD_ID.
func printReplays(w io.Writer, views []replayView, sharded bool) error {
	if len(views) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters replayed")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "DEAD_ID\t"+shardHeader(sharded)+"ORIGINAL_ID\tNEW_JOB_ID")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s%s\t%s\n", v.DeadID, shardCell(v.Shard), dash(v.OriginalID), v.JobID)
	}
	return flush(tw)
}
