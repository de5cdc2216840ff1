package endpoint

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
	// Instances is how many micro service instances of each domain this process
	// registers. micro handles one request at a time per endpoint subscription, so
	// this is the number of requests of one op that a process keeps in flight.
	Instances int `env:"INSTANCES" envDefault:"16"`
	// Timeout bounds one request.
	Timeout time.Duration `env:"TIMEOUT" envDefault:"10s"`
	Version string        `env:"VERSION" envDefault:"0.1.0"`
}

// Server hosts endpoints as micro services on one NATS connection.
type Server struct {
	svcs []micro.Service
}

type metrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
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
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.duration, m.errors} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Serve registers eps, grouped by their op's service, cfg.Instances times each, and
// returns once they are subscribed. Requests run under ctx (cancelled on shutdown
// after Stop has drained them). reg may be nil.
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
	s := &Server{}
	for _, name := range order {
		for range max(cfg.Instances, 1) {
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
				h := adapt(ctx, log, m, cmp.Or(cfg.Timeout, 10*time.Second), ep)
				if err := svc.AddEndpoint(ep.Op.Endpoint(), micro.HandlerFunc(h), micro.WithEndpointSubject(ep.Op.Subject())); err != nil {
					_ = s.Stop()
					return nil, fmt.Errorf("add endpoint %s: %w", ep.Op.Name, err)
				}
			}
		}
	}
	return s, nil
}

// Stop drains every service: in-flight requests finish, new ones go to other workers.
func (s *Server) Stop() error {
	var errs []error
	for _, svc := range s.svcs {
		if err := svc.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func adapt(base context.Context, log zerolog.Logger, m *metrics, timeout time.Duration, ep Endpoint) func(micro.Request) {
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
			if rerr := req.Error(strconv.Itoa(e.Code.HTTPStatus()), e.Message, body); rerr != nil {
				l.Warn().Err(rerr).Msg("respond")
			}
			return
		}
		if rerr := req.Respond(out); rerr != nil {
			l.Warn().Err(rerr).Msg("respond")
		}
	}
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
