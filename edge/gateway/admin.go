package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"natter/shared/endpoint"
	"natter/shared/imerr"
	"natter/shared/op"
)

// The back office's paths: the REST routes of the admin ops (/api/v1/admin/...),
// authenticated with operator tokens only (Deps.AdminSigner: another issuer and
// key than chat tokens), and the console at /admin (console.go). An edge without
// an AdminSigner serves chat only: it routes no admin op, and its NATS user
// needs no permission on im.v1.admin.> (nats-config/accounts.conf).

// adminRoutes adds the admin ops' routes to api.
func (g *Gateway) adminRoutes(api *router) error {
	for _, o := range op.All {
		if !o.BackOffice() {
			continue
		}
		for _, rt := range o.Routes {
			h := route{op: o, params: pathParams(rt.Path), ints: rt.Ints}
			if err := api.add(rt.Method+" "+rt.Path, func(w http.ResponseWriter, r *http.Request) { g.serveAdmin(w, r, h) }); err != nil {
				return fmt.Errorf("gateway admin routes: op %s: %w", o.Name, err)
			}
		}
	}
	return nil
}

// serveAdmin answers one HTTP call of an admin op: an operator token (none for
// admin.login), the rate limits, then the op over NATS. The caller's Role is the
// operator's role from the token; the adapter checks it against the op's, and
// the admin domain checks that the operator's session is live.
func (g *Gateway) serveAdmin(w http.ResponseWriter, r *http.Request, rt route) {
	start := time.Now()
	reqID := requestID(r, g)
	w.Header().Set(HeaderRequestID, reqID)
	w.Header().Set("Cache-Control", "no-store")
	name := rt.op.Name
	fail := func(e *imerr.Error) {
		g.m.observe("http", name, e, time.Since(start))
		logFailure(g.log.Warn().Str("req_id", reqID).Str("op", name), e)
		writeJSONError(w, e)
	}
	caller := endpoint.Caller{RequestID: reqID, ClientIP: clientAddr(r)}
	if rt.op.Access != op.Public {
		token := bearer(r)
		if token == "" {
			fail(imerr.New(imerr.Unauthorized, "operator login required"))
			return
		}
		claims, err := g.adminSigner.Verify(token)
		if err != nil {
			fail(imerr.Wrap(imerr.Unauthorized, err, "invalid or expired operator token"))
			return
		}
		caller.UserID, caller.SessionID, caller.Role = claims.UserID, claims.SessionID, claims.Role
	}
	limited := rt.op.Access == op.Public && !g.publicLimits.allow("ip:"+caller.ClientIP, start)
	if caller.UserID != 0 && !limited {
		limited = !g.userLimits.allow("op:"+strconv.FormatInt(caller.UserID, 10), start)
	}
	if limited {
		w.Header().Set("Retry-After", "1")
		fail(imerr.New(imerr.RateLimited, "too many requests: slow down"))
		return
	}
	data, berr := requestBody(w, r, rt)
	if berr != nil {
		fail(berr)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.cfg.RequestTimeout)
	out, err := endpoint.Request(ctx, g.nc, name, caller, data)
	cancel()
	if err != nil {
		fail(clientError(err))
		return
	}
	g.m.observe("http", name, nil, time.Since(start))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}
