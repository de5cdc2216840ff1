package endpoint

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"natter/shared/imerr"
	"natter/shared/logging"
	"natter/shared/op"
	"natter/shared/wire"
)

// Config sizes a Server.
type Config struct {
	// InFlight bounds the requests this process handles at once, across all its
	// ops. micro calls a handler on its endpoint's subscription goroutine, one
	// request at a time; the adapter hands each request to its own goroutine so
	// that a send waiting for its group commit does not hold up the next one.
	// When InFlight are running, the subscription waits (NATS buffers the rest).
	InFlight int `env:"IN_FLIGHT" envDefault:"1024"`
	// InFlightPerOp bounds the requests of one op among them, so that a flood of
	// one (logins, say) cannot take every slot from the others.
	InFlightPerOp int `env:"IN_FLIGHT_PER_OP" envDefault:"256"`
	// Timeout bounds one request.
	Timeout time.Duration `env:"TIMEOUT" envDefault:"10s"`
	Version string        `env:"VERSION" envDefault:"0.1.0"`
}

// Server hosts endpoints as micro services on one NATS connection.
type Server struct {
	svcs  []micro.Service
	slots chan struct{} // one per request in flight
	m     *metrics

	mu       sync.Mutex
	stopping bool           // handlers run inline, so that draining waits for them
	running  sync.WaitGroup // handlers started on their own goroutine
}

// dispatch runs h for req on its own goroutine, once one of the op's slots
// (opSlots) and one of the process's are free; waiting for them holds up only
// this op's subscription. Once Stop has begun it runs h inline instead: requests
// still buffered in a draining subscription are then answered before the NATS
// connection's drain completes.
func (s *Server) dispatch(h micro.HandlerFunc, opSlots chan struct{}) micro.HandlerFunc {
	return func(req micro.Request) {
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			h(req)
			return
		}
		s.running.Add(1)
		s.mu.Unlock()
		opSlots <- struct{}{}
		s.slots <- struct{}{}
		s.m.inFlight.Inc()
		go func() {
			defer func() { s.m.inFlight.Dec(); <-s.slots; <-opSlots; s.running.Done() }()
			h(req)
		}()
	}
}

type metrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	inFlight prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "natter", Subsystem: "endpoint", Name: "duration_seconds",
			Help:    "Time spent handling a request, by op.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "natter", Subsystem: "endpoint", Name: "errors_total",
			Help: "Requests answered with an error, by op and code.",
		}, []string{"op", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "natter", Subsystem: "endpoint", Name: "in_flight",
			Help: "Requests being handled; at ENDPOINT_IN_FLIGHT new ones wait in NATS.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.errors, err = register(reg, m.errors); err != nil {
		return nil, err
	}
	if m.inFlight, err = register(reg, m.inFlight); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered in its
// place (a second Server on one registry shares the series).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return c, fmt.Errorf("register metrics: %w", err)
		}
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, nil
}

// Serve registers eps as one micro service per op service (queue group = service
// name, so workers scale by running more processes), and returns once the server
// has the subscriptions. Requests run under ctx (cancelled on shutdown after Stop
// has drained them). reg may be nil.
func Serve(ctx context.Context, nc *nats.Conn, log zerolog.Logger, reg prometheus.Registerer, cfg Config, eps []Endpoint) (*Server, error) {
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	byService := map[string][]Endpoint{}
	var order []string
	for _, ep := range eps {
		if _, ok := byService[ep.Op.Service]; !ok {
			order = append(order, ep.Op.Service)
		}
		byService[ep.Op.Service] = append(byService[ep.Op.Service], ep)
	}
	s := &Server{slots: make(chan struct{}, cmp.Or(cfg.InFlight, 1024)), m: m}
	for _, name := range order {
		svc, err := micro.AddService(nc, micro.Config{
			Name:        name,
			Version:     cmp.Or(cfg.Version, "0.0.0"),
			QueueGroup:  name,
			Description: "natter " + name,
		})
		if err != nil {
			_ = s.Stop()
			return nil, fmt.Errorf("add service %s: %w", name, err)
		}
		s.svcs = append(s.svcs, svc)
		for _, ep := range byService[name] {
			h := s.dispatch(adapt(ctx, nc, log, m, cmp.Or(cfg.Timeout, 10*time.Second), ep), make(chan struct{}, cmp.Or(cfg.InFlightPerOp, 256)))
			if err := svc.AddEndpoint(ep.Op.Endpoint(), h, micro.WithEndpointSubject(ep.Op.Subject())); err != nil {
				_ = s.Stop()
				return nil, fmt.Errorf("add endpoint %s: %w", ep.Op.Name, err)
			}
		}
	}
	// A round trip to the server: once it answers, it has every subscription above,
	// so a request sent after Serve returns finds its responder.
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		_ = s.Stop()
		return nil, fmt.Errorf("confirm subscriptions: %w", err)
	}
	return s, nil
}

// Stop drains every service (new requests go to other workers) and waits for the
// requests in flight to be answered. Requests the subscriptions still hold are
// answered inline while the caller drains the NATS connection.
func (s *Server) Stop() error {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	var errs []error
	for _, svc := range s.svcs {
		if err := svc.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	s.running.Wait()
	return errors.Join(errs...)
}

// adapt turns ep into a micro handler. It answers by publishing to the request's
// reply subject itself rather than through req.Respond: the answer comes from the
// dispatch goroutine after micro's own handler call has returned, and micro reads
// the request's respond state then (its error stats would race). Errors and
// latencies are counted in natter_endpoint_*; micro's stats count requests.
func adapt(base context.Context, nc *nats.Conn, log zerolog.Logger, m *metrics, timeout time.Duration, ep Endpoint) micro.HandlerFunc {
	name := ep.Op.Name
	hist := m.duration.WithLabelValues(name)
	return func(req micro.Request) {
		start := time.Now()
		caller, err := callerFrom(req.Headers())
		l := log.With().Str("op", name).Str("req_id", caller.RequestID).Int64("user", caller.UserID).Logger()
		if err == nil {
			err = checkAccess(ep.Op, caller)
		}
		var out []byte
		if err == nil {
			if len(req.Data()) > wire.MaxFrame {
				err = imerr.New(imerr.TooLarge, "request over %d bytes", wire.MaxFrame)
			} else {
				ctx, cancel := context.WithTimeout(logging.With(base, l), timeout)
				out, err = call(ctx, ep, caller, req.Data())
				cancel()
			}
		}
		hist.Observe(time.Since(start).Seconds())
		if err != nil {
			e := imerr.From(err)
			m.errors.WithLabelValues(name, string(e.Code)).Inc()
			if e.Code == imerr.Internal || e.Code == imerr.Unavailable {
				l.Error().Err(err).Msg("request failed")
			}
			body, _ := json.Marshal(e)
			hdr := nats.Header{wire.HeaderError: {e.Message}, wire.HeaderErrorCode: {strconv.Itoa(e.Code.HTTPStatus())}}
			if rerr := respond(nc, req, body, hdr); rerr != nil {
				l.Warn().Err(rerr).Msg("respond")
			}
			return
		}
		if rerr := respond(nc, req, out, nil); rerr != nil {
			l.Warn().Err(rerr).Msg("respond")
		}
	}
}

// respond publishes the answer to req's reply subject (none: nobody waits).
func respond(nc *nats.Conn, req micro.Request, data []byte, hdr nats.Header) error {
	if req.Reply() == "" {
		return nil
	}
	return nc.PublishMsg(&nats.Msg{Subject: req.Reply(), Data: data, Header: hdr})
}

// call runs the handler, turning a panic into an internal error so one bad request
// cannot take a worker down.
func call(ctx context.Context, ep Endpoint, c Caller, data []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in %s: %v", ep.Op.Name, r)
		}
	}()
	return ep.handle(ctx, c, data)
}

// checkAccess refuses user ops without a caller. Public ops need none, and
// internal ops come only from edges (NATS permissions) and check what they need.
func checkAccess(o op.Op, c Caller) error {
	if o.Access == op.User && c.UserID == 0 {
		return imerr.New(imerr.Unauthorized, "login required")
	}
	return nil
}
