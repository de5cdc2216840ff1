package endpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"natter/shared/config"
	"natter/shared/imerr"
	"natter/shared/logging"
	"natter/shared/metrics"
	"natter/shared/op"
	"natter/shared/subject"
	"natter/shared/tracing"
	"natter/shared/wire"
)

// Config sizes a Server (env prefix ENDPOINT_ in the worker). Zero fields take
// their envDefault.
type Config struct {
	// InFlight bounds the requests this process handles at once, across all its
	// ops. Each request runs on its own goroutine, so that a send waiting for its
	// group commit does not hold up the next one. When InFlight are running, the
	// endpoint's subscription waits (NATS buffers the rest).
	InFlight int `env:"IN_FLIGHT" envDefault:"1024"`
	// InFlightPerOp bounds the requests of one op among them, so that a flood of
	// one (logins, say) cannot take every slot from the others.
	InFlightPerOp int `env:"IN_FLIGHT_PER_OP" envDefault:"256"`
	// Timeout bounds one request from its arrival; the caller's own deadline
	// (the Natter-Deadline header) shortens it.
	Timeout time.Duration `env:"TIMEOUT" envDefault:"10s"`
	// Version is what `nats micro list` shows for every service (SemVer).
	Version string `env:"VERSION" envDefault:"0.1.0"`
}

// Server hosts endpoints as NATS micro services: one service per op service of
// the table, its endpoints in a queue group named after it, so workers scale by
// running more processes.
//
// It speaks micro's protocol (the $SRV.PING, INFO and STATS subjects and their
// replies, micro's error headers) with micro's own types, but runs the requests
// itself: micro.AddService calls a handler on its endpoint's subscription
// goroutine, one request at a time, and counts only what that call takes. natter
// needs many requests of one op in flight per process (group commit batches
// them), and `nats micro stats` must count errors and the time each request
// really took. So each request runs on its own goroutine and the stats are the
// server's own, measured from a request's arrival to its answer.
type Server struct {
	nc    *nats.Conn
	log   zerolog.Logger
	cfg   Config
	base  context.Context
	slots chan struct{} // one per request in flight
	m     *serverMetrics
	svcs  []*service
	verbs []*nats.Subscription

	mu       sync.Mutex
	stopping bool           // handlers run inline, so that draining waits for them
	running  sync.WaitGroup // handlers started on their own goroutine
}

// service is one micro service: its identity and endpoints.
type service struct {
	id      micro.ServiceIdentity
	desc    string
	started time.Time
	eps     []*handler
}

// handler serves one op.
type handler struct {
	ep    Endpoint
	svc   *service
	sub   *nats.Subscription
	slots chan struct{} // this op's share of the process's slots
	hist  prometheus.Observer

	mu      sync.Mutex // guards the stats below
	count   int
	errs    int
	lastErr string
	busy    time.Duration
}

type serverMetrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	inFlight prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*serverMetrics, error) {
	m := &serverMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "natter", Subsystem: "endpoint", Name: "duration_seconds",
			Help:    "Time from a request's arrival to its answer, by op.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "natter", Subsystem: "endpoint", Name: "errors_total",
			Help: "Requests answered with an error (or dropped past their deadline: unavailable), by op and code.",
		}, []string{"op", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "natter", Subsystem: "endpoint", Name: "in_flight",
			Help: "Requests being handled; at ENDPOINT_IN_FLIGHT new ones wait in NATS.",
		}),
	}
	var err error
	if m.duration, err = metrics.Register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.errors, err = metrics.Register(reg, m.errors); err != nil {
		return nil, err
	}
	if m.inFlight, err = metrics.Register(reg, m.inFlight); err != nil {
		return nil, err
	}
	return m, nil
}

// Serve registers eps as one micro service per op service and returns once the
// server has the subscriptions. Requests run under ctx (which should outlive the
// drain of Stop). reg may be nil.
func Serve(ctx context.Context, nc *nats.Conn, log zerolog.Logger, reg prometheus.Registerer, cfg Config, eps []Endpoint) (*Server, error) {
	cfg = config.WithDefaults(cfg)
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	s := &Server{nc: nc, log: log, cfg: cfg, base: ctx, slots: make(chan struct{}, cfg.InFlight), m: m}
	byName := map[string]*service{}
	for _, ep := range eps {
		svc := byName[ep.Op.Service]
		if svc == nil {
			svc = &service{id: micro.ServiceIdentity{Name: ep.Op.Service, ID: nuid.Next(), Version: cfg.Version},
				desc: "natter " + ep.Op.Service, started: time.Now().UTC()}
			byName[ep.Op.Service] = svc
			s.svcs = append(s.svcs, svc)
		}
		svc.eps = append(svc.eps, &handler{ep: ep, svc: svc, slots: make(chan struct{}, cfg.InFlightPerOp),
			hist: m.duration.WithLabelValues(ep.Op.Name)})
	}
	for _, svc := range s.svcs {
		for _, h := range svc.eps {
			h.sub, err = nc.QueueSubscribe(h.ep.Op.Subject(), svc.id.Name, func(msg *nats.Msg) { s.dispatch(h, msg, time.Now()) })
			if err != nil {
				_ = s.Stop()
				return nil, fmt.Errorf("subscribe %s: %w", h.ep.Op.Name, err)
			}
		}
		if err := s.serveVerbs(svc); err != nil {
			_ = s.Stop()
			return nil, err
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

// serveVerbs answers micro's PING, INFO and STATS for svc on the three subjects
// micro uses for each ($SRV.<VERB>, $SRV.<VERB>.<name>, $SRV.<VERB>.<name>.<id>).
func (s *Server) serveVerbs(svc *service) error {
	for verb, answer := range map[micro.Verb]func() any{
		micro.PingVerb:  func() any { return micro.Ping{ServiceIdentity: svc.id, Type: micro.PingResponseType} },
		micro.InfoVerb:  func() any { return svc.info() },
		micro.StatsVerb: func() any { return svc.stats() },
	} {
		for _, scope := range [][2]string{{"", ""}, {svc.id.Name, ""}, {svc.id.Name, svc.id.ID}} {
			subj, err := micro.ControlSubject(verb, scope[0], scope[1])
			if err != nil {
				return err
			}
			sub, err := s.nc.Subscribe(subj, func(msg *nats.Msg) {
				if b, err := json.Marshal(answer()); err == nil {
					_ = msg.Respond(b)
				}
			})
			if err != nil {
				return fmt.Errorf("subscribe %s: %w", subj, err)
			}
			s.verbs = append(s.verbs, sub)
		}
	}
	return nil
}

func (svc *service) info() micro.Info {
	in := micro.Info{ServiceIdentity: svc.id, Type: micro.InfoResponseType, Description: svc.desc, Endpoints: []micro.EndpointInfo{}}
	for _, h := range svc.eps {
		access := map[op.Access]string{op.User: "user", op.Public: "public", op.Internal: "internal", op.Admin: "admin"}[h.ep.Op.Access]
		in.Endpoints = append(in.Endpoints, micro.EndpointInfo{Name: h.ep.Op.Endpoint(), Subject: h.ep.Op.Subject(), QueueGroup: svc.id.Name,
			Metadata: map[string]string{"op": h.ep.Op.Name, "access": access}})
	}
	return in
}

func (svc *service) stats() micro.Stats {
	st := micro.Stats{ServiceIdentity: svc.id, Type: micro.StatsResponseType, Started: svc.started, Endpoints: []*micro.EndpointStats{}}
	for _, h := range svc.eps {
		h.mu.Lock()
		es := &micro.EndpointStats{Name: h.ep.Op.Endpoint(), Subject: h.ep.Op.Subject(), QueueGroup: svc.id.Name,
			NumRequests: h.count, NumErrors: h.errs, LastError: h.lastErr, ProcessingTime: h.busy}
		if h.count > 0 {
			es.AverageProcessingTime = h.busy / time.Duration(h.count)
		}
		h.mu.Unlock()
		st.Endpoints = append(st.Endpoints, es)
	}
	return st
}

// dispatch runs the request on its own goroutine once one of the op's slots and
// one of the process's are free; waiting for them holds up only this op's
// subscription. Once Stop has begun it runs the request inline instead: requests
// still buffered in a draining subscription are then answered before the NATS
// connection's drain completes.
func (s *Server) dispatch(h *handler, msg *nats.Msg, arrived time.Time) {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		s.handle(h, msg, arrived)
		return
	}
	s.running.Add(1)
	s.mu.Unlock()
	h.slots <- struct{}{}
	s.slots <- struct{}{}
	s.m.inFlight.Inc()
	go func() {
		defer func() { s.m.inFlight.Dec(); <-s.slots; <-h.slots; s.running.Done() }()
		s.handle(h, msg, arrived)
	}()
}

// replyHeadroom is left of NATS's max payload for a reply's headers.
const replyHeadroom = 4 << 10

// errExpired marks a request whose caller gave up before it could start.
var errExpired = imerr.New(imerr.Unavailable, "the request waited past its deadline")

// handle answers one request. Its deadline runs from its arrival (Timeout), or
// from the caller's Natter-Deadline when that is sooner; a request already past
// it when a slot frees up is not started, since nobody waits for its answer.
func (s *Server) handle(h *handler, msg *nats.Msg, arrived time.Time) {
	name := h.ep.Op.Name
	caller, err := callerFrom(msg.Header)
	// The caller's trace context (W3C headers, when tracing is on) parents the span.
	tctx, span := tracing.Tracer().Start(tracing.Extract(s.base, msg.Header), name,
		trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(arrived))
	defer span.End()
	lc := s.log.With().Str("op", name).Str("req_id", caller.RequestID).Int64("user", caller.UserID)
	if id := tracing.TraceID(tctx); id != "" {
		lc = lc.Str("trace_id", id)
	}
	l := lc.Logger()
	deadline := arrived.Add(s.cfg.Timeout)
	if ms, perr := strconv.ParseInt(msg.Header.Get(wire.HeaderDeadline), 10, 64); perr == nil && ms > 0 {
		if d := time.UnixMilli(ms); d.Before(deadline) {
			deadline = d
		}
	}
	var out []byte
	switch {
	case err != nil:
	case !time.Now().Before(deadline):
		err = errExpired
	default:
		if err = checkAccess(h.ep.Op, caller); err != nil {
			if h.ep.Op.Access == op.Admin {
				s.refused(h.ep.Op, caller, err)
			}
			break
		}
		if len(msg.Data) > wire.MaxFrame {
			err = imerr.New(imerr.TooLarge, "the request is over %d bytes", wire.MaxFrame)
			break
		}
		ctx, cancel := context.WithDeadline(logging.With(tctx, l), deadline)
		out, err = call(ctx, l, h.ep, caller, msg.Data)
		cancel()
		// Pages stop before wire.MaxReply; an answer NATS would refuse is a bug,
		// told to the caller now rather than by its timeout.
		if max := s.nc.MaxPayload() - replyHeadroom; err == nil && int64(len(out)) > max {
			err = fmt.Errorf("%s reply of %d bytes, over the server's max payload less headers (%d)", name, len(out), max)
		}
	}
	if err == nil {
		err = respond(msg, out, nil)
		if err != nil {
			l.Warn().Err(err).Msg("respond")
		}
		h.done(s, arrived, nil)
		return
	}
	e := imerr.From(err)
	span.SetStatus(codes.Error, string(e.Code))
	if e.Code == imerr.Internal || (e.Code == imerr.Unavailable && err != errExpired) {
		l.Error().Err(err).Msg("request failed")
	}
	if err != errExpired { // the caller gave up: nobody reads an answer
		body, _ := json.Marshal(e)
		hdr := nats.Header{micro.ErrorHeader: {e.Message}, micro.ErrorCodeHeader: {strconv.Itoa(e.Code.HTTPStatus())}}
		if rerr := respond(msg, body, hdr); rerr != nil {
			l.Warn().Err(rerr).Msg("respond")
		}
	}
	h.done(s, arrived, e)
}

// refused tells the back office (im.evt.security.admin_refused) that an admin op
// was refused to caller; it audits refusals above a rate.
func (s *Server) refused(o op.Op, c Caller, err error) {
	b, merr := json.Marshal(wire.AdminRefused{Op: o.Name, UserID: c.UserID, Role: c.Role, Code: string(imerr.CodeOf(err)),
		At: time.Now().UnixMilli(), ClientIP: c.ClientIP})
	if merr == nil {
		merr = s.nc.Publish(subject.EvtAdminRefused, b)
	}
	if merr != nil {
		s.log.Warn().Err(merr).Str("op", o.Name).Msg("publish admin_refused")
	}
}

// done counts one answered request in the op's stats and metrics.
func (h *handler) done(s *Server, arrived time.Time, e *imerr.Error) {
	took := time.Since(arrived)
	h.hist.Observe(took.Seconds())
	h.mu.Lock()
	h.count++
	h.busy += took
	if e != nil {
		h.errs++
		h.lastErr = string(e.Code) + ": " + e.Message
	}
	h.mu.Unlock()
	if e != nil {
		s.m.errors.WithLabelValues(h.ep.Op.Name, string(e.Code)).Inc()
	}
}

// respond publishes the answer to the request's reply subject (none: nobody waits).
func respond(msg *nats.Msg, data []byte, hdr nats.Header) error {
	if msg.Reply == "" {
		return nil
	}
	return msg.RespondMsg(&nats.Msg{Data: data, Header: hdr})
}

// Stop drains every endpoint subscription (new requests go to other workers) and
// waits for the requests in flight to be answered. Requests the subscriptions
// still hold are answered inline while the caller drains the NATS connection.
// The PING, INFO and STATS subscriptions go last.
func (s *Server) Stop() error {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	var errs []error
	for _, svc := range s.svcs {
		for _, h := range svc.eps {
			if h.sub != nil {
				if err := h.sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
					errs = append(errs, fmt.Errorf("drain %s: %w", h.ep.Op.Name, err))
				}
			}
		}
	}
	s.running.Wait()
	for _, sub := range s.verbs {
		_ = sub.Unsubscribe()
	}
	return errors.Join(errs...)
}

// call runs the handler, turning a panic into an internal error (its stack in
// the log) so one bad request cannot take a worker down.
func call(ctx context.Context, l zerolog.Logger, ep Endpoint, c Caller, data []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			l.Error().Str("panic", fmt.Sprint(r)).Str("stack", string(debug.Stack())).Msg("handler panicked")
			err = fmt.Errorf("panic in %s: %v", ep.Op.Name, r)
		}
	}()
	return ep.handle(ctx, c, data)
}

// checkAccess refuses user ops without a caller. Public ops need none, and
// internal ops come only from edges (NATS permissions) and check what they need.
// Operators and chat users are separate id spaces: an operator (a caller with an
// operator role) may call only admin ops, and only those its role reaches; a chat
// user never reaches an admin op.
func checkAccess(o op.Op, c Caller) error {
	switch o.Access {
	case op.User:
		if c.UserID == 0 {
			return imerr.New(imerr.Unauthorized, "login required")
		}
		if op.AdminRank(c.Role) > 0 {
			return imerr.New(imerr.Forbidden, "an operator token cannot call chat operations")
		}
	case op.Admin:
		if c.UserID == 0 || op.AdminRank(c.Role) == 0 {
			return imerr.New(imerr.Unauthorized, "operator login required")
		}
		if op.AdminRank(c.Role) < op.AdminRank(o.Role) {
			return imerr.New(imerr.Forbidden, "role %s may not call %s", c.Role, o.Name)
		}
	}
	return nil
}
