package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"natter/shared/imerr"
	"natter/shared/tracing"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"natter/shared/endpoint"
	"natter/shared/op"
	"natter/shared/wire"
	"natter/web/chat"
)

// HeaderRequestID is the HTTP header that carries a request id in and out.
const HeaderRequestID = "X-Request-Id"

// route is one HTTP route onto an op: its path parameters and which parameters
// (path or query) are integers.
type route struct {
	op     op.Op
	params []string
	ints   []string
}

// routes builds the handler: every Route of every client op and the generic
// POST /api/v1/{op} (on a router, see router.go), the WebSocket and the operator
// endpoints, and JSON 404s for everything else.
func (g *Gateway) routes() (*http.ServeMux, error) {
	api := &router{}
	for _, o := range op.All {
		if o.Access == op.Internal || o.Access == op.Admin || o.BackOffice() { // admin ops have their own routes and tokens (admin.go)
			continue
		}
		for _, rt := range o.Routes {
			h := route{op: o, params: pathParams(rt.Path), ints: rt.Ints}
			if err := api.add(rt.Method+" "+rt.Path, func(w http.ResponseWriter, r *http.Request) { g.serveOp(w, r, h) }); err != nil {
				return nil, fmt.Errorf("gateway routes: op %s: %w", o.Name, err)
			}
		}
	}
	// The file routes of files.go: a streamed upload and a download redirect.
	if err := api.add("POST /api/v1/files", g.serveUpload); err != nil {
		return nil, fmt.Errorf("gateway routes: %w", err)
	}
	if err := api.add("GET /api/v1/files/{file_id}", g.serveDownload); err != nil {
		return nil, fmt.Errorf("gateway routes: %w", err)
	}
	if g.adminSigner != nil {
		if err := g.adminRoutes(api); err != nil {
			return nil, err
		}
	}
	err := api.add("POST /api/v1/{op...}", func(w http.ResponseWriter, r *http.Request) {
		o, ok := op.Lookup(r.PathValue("op"))
		if !ok || o.Access == op.Internal || o.Access == op.Admin || o.BackOffice() {
			writeJSONError(w, unknownOp(r.PathValue("op")))
			return
		}
		g.serveOp(w, r, route{op: o})
	})
	if err != nil {
		return nil, fmt.Errorf("gateway routes: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle("/api/v1/", api)
	mux.HandleFunc("GET /ws", g.serveWS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeStatus(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !g.ready() {
			writeStatus(w, http.StatusServiceUnavailable, "not ready")
			return
		}
		writeStatus(w, http.StatusOK, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{Registry: g.reg}))
	if g.adminSigner != nil {
		g.consoleRoutes(mux)
	}
	// The web chat app (web/chat, embedded) at /; any other path is a JSON 404.
	mux.Handle("/", chat.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { writeNotFound(w) })))
	return mux, nil
}

func writeNotFound(w http.ResponseWriter) {
	writeJSONError(w, imerr.New(imerr.NotFound, "no such route"))
}

func writeStatus(w http.ResponseWriter, code int, status string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = fmt.Fprintf(w, "{\"status\":%q}\n", status)
}

// serveOp answers one HTTP call of an op: authenticate, build the request object
// from body, query and path, send it over NATS, and return the function's JSON
// reply verbatim (200) or the error with its status.
func (g *Gateway) serveOp(w http.ResponseWriter, r *http.Request, rt route) {
	start := time.Now()
	reqID := requestID(r, g)
	w.Header().Set(HeaderRequestID, reqID)
	name := rt.op.Name
	fail := func(e *imerr.Error) {
		g.m.observe("http", name, e, time.Since(start))
		logFailure(g.log.Warn().Str("req_id", reqID).Str("op", name), e)
		g.log.Debug().Str("req_id", reqID).Str("op", name).Str("code", string(e.Code)).Msg("http request")
		writeJSONError(w, e)
	}

	caller := endpoint.Caller{RequestID: reqID, ClientIP: clientAddr(r)}
	if token := bearer(r); token != "" || rt.op.Access != op.Public {
		claims, aerr := g.authenticate(token)
		switch {
		case aerr == nil:
			caller.UserID, caller.DeviceID, caller.SessionID, caller.Role = claims.UserID, claims.DeviceID, claims.SessionID, claims.Role
		case rt.op.Access != op.Public:
			fail(aerr)
			return
		}
		// A public op ignores a bad token: it acts for nobody then.
	}
	// Public ops (login, register, refresh: password guesses, argon2id work) are
	// limited per client address, a token or not; the rest per user.
	limited := rt.op.Access == op.Public && !g.publicLimits.allow("ip:"+caller.ClientIP, start)
	if caller.UserID != 0 && !limited {
		limited = !g.userLimits.allow("u:"+strconv.FormatInt(caller.UserID, 10), start)
	}
	if limited {
		w.Header().Set("Retry-After", "1")
		fail(imerr.New(imerr.RateLimited, "too many requests: slow down"))
		return
	}
	if e := g.gate(rt.op); e != nil {
		fail(e)
		return
	}
	// The session checks a WebSocket gets when it connects, for HTTP too.
	if rt.op.Access != op.Public {
		if e := g.checkSession(r.Context(), caller); e != nil {
			fail(e)
			return
		}
	}

	data, berr := requestBody(w, r, rt)
	if berr != nil {
		fail(berr)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.RequestTimeout)
	ctx, span := tracing.Tracer().Start(ctx, "edge "+name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithTimestamp(start))
	out, err := endpoint.Request(ctx, g.nc, name, caller, data)
	if err != nil {
		span.SetStatus(codes.Error, string(imerr.From(err).Code))
	}
	span.End()
	cancel()
	if err != nil {
		fail(clientError(err))
		return
	}
	g.m.observe("http", name, nil, time.Since(start))
	g.log.Debug().Str("req_id", reqID).Str("op", name).Str("code", "ok").Dur("dur", time.Since(start)).Msg("http request")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// requestBody builds the request object of an HTTP call: the JSON body (an object,
// or empty) with query parameters and then path parameters merged over it. Names
// in rt.ints become JSON numbers, everything else strings. Without parameters the
// body goes to the function as sent, without a decode and re-encode.
func requestBody(w http.ResponseWriter, r *http.Request, rt route) ([]byte, *imerr.Error) {
	var body []byte
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Body != nil {
		if r.ContentLength > wire.MaxFrame {
			return nil, imerr.New(imerr.TooLarge, "body over %d bytes", wire.MaxFrame)
		}
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, wire.MaxFrame))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, imerr.New(imerr.TooLarge, "body over %d bytes", wire.MaxFrame)
			}
			return nil, imerr.Wrap(imerr.BadRequest, err, "cannot read body")
		}
		body = bytes.TrimSpace(b)
	}
	if len(body) > 0 && (body[0] != '{' || !json.Valid(body)) {
		return nil, imerr.New(imerr.BadRequest, "body must be a JSON object")
	}
	query := r.URL.Query()
	if len(rt.params) == 0 && len(query) == 0 {
		return body, nil
	}
	fields := map[string]json.RawMessage{}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &fields); err != nil {
			return nil, imerr.Wrap(imerr.BadRequest, err, "body must be a JSON object")
		}
	}
	set := func(name, v string) *imerr.Error {
		if slices.Contains(rt.ints, name) {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return imerr.New(imerr.BadRequest, "%s must be an integer", name)
			}
			fields[name] = strconv.AppendInt(nil, n, 10)
			return nil
		}
		fields[name], _ = json.Marshal(v) // a string: cannot fail
		return nil
	}
	for name, vs := range query {
		if err := set(name, vs[0]); err != nil {
			return nil, err
		}
	}
	for _, name := range rt.params {
		if err := set(name, r.PathValue(name)); err != nil {
			return nil, err
		}
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, imerr.Wrap(imerr.BadRequest, err, "invalid request")
	}
	return out, nil
}

// pathParams lists the {name} wildcards of a ServeMux pattern path.
func pathParams(path string) []string {
	var names []string
	for seg := range strings.SplitSeq(path, "/") {
		if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' {
			names = append(names, strings.TrimSuffix(seg[1:len(seg)-1], "..."))
		}
	}
	return names
}

// requestID is the client's X-Request-Id if it is short and plain, else a new one.
func requestID(r *http.Request, g *Gateway) string {
	if id := r.Header.Get(HeaderRequestID); saneID(id) {
		return id
	}
	return g.newID(&g.reqSeq)
}

func saneID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '-', b == '_', b == '.', b == ':':
		default:
			return false
		}
	}
	return true
}
