// Package service wires rtmanager's stop-job pipeline: the Redis Streams
// broker, one generated AppController per worker with the broker's
// middleware, and the stop-job handler on the orchestrator. cmd/rtmanager
// runs it; the benchmark runs exactly the same wiring in process.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/lerenn/asyncapi-codegen/pkg/extensions"
	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/startjobs"
	"galaxy/rtmanager/internal/stopjobs"
)

// DefaultWorkers is the default number of jobs handled at once. An idle
// worker is a parked goroutine, so the default is set for bursts: a
// platform shutdown stops many games at once, and each Docker stop can take
// its whole grace period. Under load more workers also make larger batches
// per Redis round trip (docs/benchmarks.md).
const DefaultWorkers = 64

// Options configure Start.
type Options struct {
	// Stopper carries stops out (a *stopruntime.Service). Required.
	Stopper stopjobs.Stopper
	// Workers is the number of generated controllers, each handling one job
	// at a time. Default DefaultWorkers.
	Workers int
	// Broker configures the broker; its Contract and Logger default to this
	// struct's. Broker.Shards (--shards) sets the key layout: the runtime
	// store must be built with the same one (runtimestore.Options.Layout;
	// Service.Broker.Layout()).
	Broker redisstream.Options
	// Contract is the AsyncAPI document. Default: the embedded one.
	Contract *api.Document
	// Logger receives the handler's, broker's and controllers' logs.
	// Default slog.Default().
	Logger *slog.Logger
	// Metrics is told about answered jobs. Default: none.
	Metrics stopjobs.Metrics

	// Starter carries start jobs out (a *startruntime.Service); nil: start
	// jobs are not read. StartWorkers controllers, of their own, handle
	// them (default DefaultStartWorkers); StartMetrics is told about them.
	Starter      startjobs.Starter
	StartWorkers int
	StartMetrics startjobs.Metrics
}

// DefaultStartWorkers is the default number of start jobs handled at once;
// a start can wait --start-timeout for its engine.
const DefaultStartWorkers = 16

// Service is a running pipeline.
type Service struct {
	Broker *redisstream.Broker
	ctrls  []*runtimejobs.AppController
}

// Start subscribes Workers controllers to the stop-job stream.
func Start(ctx context.Context, rdb redis.UniversalClient, opts Options) (*Service, error) {
	if opts.Stopper == nil {
		return nil, errors.New("start service: nil stopper")
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Contract == nil {
		doc, err := api.Load()
		if err != nil {
			return nil, fmt.Errorf("start service: %w", err)
		}
		opts.Contract = doc
	}
	bo := opts.Broker
	if bo.Contract == nil {
		bo.Contract = opts.Contract
	}
	if bo.Logger == nil {
		bo.Logger = opts.Logger
	}
	broker, err := redisstream.New(rdb, bo)
	if err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	s := &Service{Broker: broker}
	ctrlLog := ControllerLogger{Log: opts.Logger.With("component", "asyncapi")}
	for i := 0; i < opts.Workers; i++ {
		c, err := runtimejobs.NewAppController(broker,
			runtimejobs.WithMiddlewares(broker.Middleware()),
			runtimejobs.WithLogger(ctrlLog))
		if err != nil {
			s.Close(context.Background())
			return nil, fmt.Errorf("create app controller: %w", err)
		}
		s.ctrls = append(s.ctrls, c)
		h, err := stopjobs.New(opts.Stopper, c, stopjobs.Options{
			DeliveryFrom: DeliveryFrom, Contract: opts.Contract, Logger: opts.Logger, Metrics: opts.Metrics,
		})
		if err != nil {
			s.Close(context.Background())
			return nil, fmt.Errorf("create stop job handler: %w", err)
		}
		if err := c.SubscribeToReceiveStopJobOperation(ctx, h.ReceiveStopJobOperationReceived); err != nil {
			s.Close(context.Background())
			return nil, fmt.Errorf("subscribe to stop jobs: %w", err)
		}
	}
	if err := s.startStartWorkers(ctx, broker, opts, ctrlLog); err != nil {
		s.Close(context.Background())
		return nil, err
	}
	return s, nil
}

// startStartWorkers subscribes the start-job controllers: the same broker,
// workers of their own, so slow starts never hold stop workers.
func (s *Service) startStartWorkers(ctx context.Context, broker *redisstream.Broker, opts Options, ctrlLog ControllerLogger) error {
	if opts.Starter == nil {
		return nil
	}
	n := opts.StartWorkers
	if n <= 0 {
		n = DefaultStartWorkers
	}
	for i := 0; i < n; i++ {
		c, err := runtimejobs.NewAppController(broker,
			runtimejobs.WithMiddlewares(broker.Middleware()),
			runtimejobs.WithLogger(ctrlLog))
		if err != nil {
			return fmt.Errorf("create app controller: %w", err)
		}
		s.ctrls = append(s.ctrls, c)
		h, err := startjobs.New(opts.Starter, c, startjobs.Options{
			DeliveryFrom: StartDeliveryFrom, Logger: opts.Logger, Metrics: opts.StartMetrics,
		})
		if err != nil {
			return fmt.Errorf("create start job handler: %w", err)
		}
		if err := c.SubscribeToReceiveStartJobOperation(ctx, h.ReceiveStartJobOperationReceived); err != nil {
			return fmt.Errorf("subscribe to start jobs: %w", err)
		}
	}
	return nil
}

// StartDeliveryFrom gives the start handler the broker's delivery.
func StartDeliveryFrom(ctx context.Context) (startjobs.Delivery, bool) {
	d, ok := redisstream.DeliveryFrom(ctx)
	if !ok {
		return nil, false
	}
	return d, true
}

// Close stops reading, waits for in-flight jobs until ctx ends (unfinished
// ones stay pending), then closes the controllers.
func (s *Service) Close(ctx context.Context) error {
	err := s.Broker.Close(ctx)
	for _, c := range s.ctrls {
		c.Close(ctx)
	}
	return err
}

// DeliveryFrom gives the handler the broker's delivery of the current job.
func DeliveryFrom(ctx context.Context) (stopjobs.Delivery, bool) {
	d, ok := redisstream.DeliveryFrom(ctx)
	if !ok {
		return nil, false
	}
	return d, true
}

// ControllerLogger lets asyncapi-codegen's controllers log through slog;
// their chatty Info lines go to debug.
type ControllerLogger struct{ Log *slog.Logger }

var _ extensions.Logger = ControllerLogger{}

func (l ControllerLogger) attrs(ctx context.Context, info []extensions.LogInfo) []any {
	out := make([]any, 0, 2*len(info)+2)
	if ch, ok := ctx.Value(extensions.ContextKeyIsChannel).(string); ok {
		out = append(out, "channel", ch)
	}
	for _, i := range info {
		out = append(out, i.Key, i.Value)
	}
	return out
}

// Info implements extensions.Logger.
func (l ControllerLogger) Info(ctx context.Context, msg string, info ...extensions.LogInfo) {
	l.Log.DebugContext(ctx, msg, l.attrs(ctx, info)...)
}

// Warning implements extensions.Logger.
func (l ControllerLogger) Warning(ctx context.Context, msg string, info ...extensions.LogInfo) {
	l.Log.WarnContext(ctx, msg, l.attrs(ctx, info)...)
}

// Error implements extensions.Logger.
func (l ControllerLogger) Error(ctx context.Context, msg string, info ...extensions.LogInfo) {
	l.Log.ErrorContext(ctx, msg, l.attrs(ctx, info)...)
}
