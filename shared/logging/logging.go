// Package logging builds the root zerolog logger and carries per-request loggers in
// contexts.
package logging

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"

	"natter/shared/config"
)

// New returns the root logger for a binary; main creates it once. Pretty output is
// coloured only on a terminal, so logs sent to a file or a pipe carry no escape
// codes (zerolog also leaves colour out when NO_COLOR is set).
func New(c config.Log, service string) zerolog.Logger {
	var w io.Writer = os.Stderr
	if c.Pretty {
		w = zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly, NoColor: !terminal(os.Stderr)}
	}
	lvl, err := zerolog.ParseLevel(c.Level)
	if err != nil || c.Level == "" {
		lvl = zerolog.InfoLevel
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("service", service).Logger()
}

// terminal reports whether f is a character device: a terminal, or /dev/null, where
// colour does no harm. Files and pipes are not.
func terminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// With returns ctx carrying l.
func With(ctx context.Context, l zerolog.Logger) context.Context { return l.WithContext(ctx) }

// From returns the logger in ctx (a disabled one if none).
func From(ctx context.Context) *zerolog.Logger { return zerolog.Ctx(ctx) }
