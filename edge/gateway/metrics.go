package gateway

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"natter/shared/imerr"
)

// metrics are the edge's Prometheus series (namespace natter, subsystem edge).
type metrics struct {
	conns      prometheus.Gauge
	users      prometheus.Gauge
	groups     prometheus.Gauge
	framesIn   prometheus.Counter
	framesOut  prometheus.Counter
	writes     prometheus.Counter
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	pushes     prometheus.Counter
	dropped    prometheus.Counter
	queued     prometheus.GaugeFunc
	paused     prometheus.Counter
	slowCloses prometheus.Counter
}

// Op labels of frames that name no client op: opInvalid for bad JSON, unknown
// and internal ops; opUnparsed for frames refused before parsing (rate limited).
const (
	opInvalid  = "invalid"
	opUnparsed = "unparsed"
)

// newMetrics registers the edge's series; queued is read for natter_edge_queued_bytes.
func newMetrics(reg prometheus.Registerer, queued *atomic.Int64) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "natter", Subsystem: "edge", Name: name, Help: help}
	}
	m := &metrics{
		conns:     prometheus.NewGauge(prometheus.GaugeOpts(opts("connections", "Open WebSocket connections."))),
		users:     prometheus.NewGauge(prometheus.GaugeOpts(opts("users", "Users with at least one WebSocket on this edge (= delivery subscriptions)."))),
		groups:    prometheus.NewGauge(prometheus.GaugeOpts(opts("groups", "Groups with a member connected to this edge (= group delivery subscriptions)."))),
		framesIn:  prometheus.NewCounter(prometheus.CounterOpts(opts("frames_in_total", "WebSocket data frames received."))),
		framesOut: prometheus.NewCounter(prometheus.CounterOpts(opts("frames_out_total", "WebSocket data frames written (replies and pushes)."))),
		writes: prometheus.NewCounter(prometheus.CounterOpts(opts("writes_total",
			"Socket writes of WebSocket frames; frames_out_total over this is the frames per write(2)."))),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts(opts("requests_total",
			"Requests by transport (ws, http), op and result code (ok or an error code).")), []string{"transport", "op", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "natter", Subsystem: "edge", Name: "request_duration_seconds",
			Help:    "Time from a request's arrival at the edge to its reply, by transport and op.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"transport", "op"}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts(opts("pushes_total", "Push frames queued to WebSockets."))),
		dropped: prometheus.NewCounter(prometheus.CounterOpts(opts("pushes_dropped_total",
			"Push frames dropped because a WebSocket's send queue was full (EDGE_SEND_QUEUE frames or EDGE_WS_QUEUE_BYTES bytes)."))),
		queued: prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("queued_bytes",
			"Bytes of frames queued for WebSockets and not yet written, replies and pushes.")), func() float64 { return float64(queued.Load()) }),
		paused: prometheus.NewCounter(prometheus.CounterOpts(opts("requests_paused_total",
			"WebSocket requests held back because their connection's send queue was over EDGE_WS_QUEUE_BYTES."))),
		slowCloses: prometheus.NewCounter(prometheus.CounterOpts(opts("slow_consumer_closes_total",
			"WebSockets closed (3003) for not reading their send queue: over EDGE_WS_QUEUE_MAX, or over EDGE_WS_QUEUE_BYTES for EDGE_WS_QUEUE_TIMEOUT."))),
	}
	for _, c := range []prometheus.Collector{m.conns, m.users, m.groups, m.framesIn, m.framesOut, m.writes, m.requests, m.latency, m.pushes, m.dropped, m.queued, m.paused, m.slowCloses} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("gateway metrics: %w", err)
		}
	}
	return m, nil
}

// observe records one finished request; err nil means ok.
func (m *metrics) observe(transport, op string, err error, d time.Duration) {
	code := "ok"
	if err != nil {
		code = string(imerr.CodeOf(err))
	}
	m.requests.WithLabelValues(transport, op, code).Inc()
	m.latency.WithLabelValues(transport, op).Observe(d.Seconds())
}
