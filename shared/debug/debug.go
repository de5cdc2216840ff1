// Package debug serves the operator-only endpoints of a binary on a separate,
// loopback-by-default address: Go's pprof profiles. Keeping them off the public
// listener means a client can never reach them.
package debug

import (
	"errors"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/rs/zerolog"
)

// Mux returns a mux with /debug/pprof/ handlers.
func Mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Serve runs h on addr in the background (nothing when addr is empty) and
// returns the server so main can shut it down.
func Serve(addr string, h http.Handler, log zerolog.Logger) *http.Server {
	if addr == "" {
		return nil
	}
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Str("addr", addr).Msg("debug server")
		}
	}()
	return srv
}
