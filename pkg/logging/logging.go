// Package logging makes the zerolog loggers every Tandem service writes with
// (SPEC §8): JSON lines, or a human console form, with RFC 3339 millisecond
// UTC timestamps and a fixed set of field names, so that the logs of all
// services of both nodes can be merged and queried alike.
//
// A service's cmd/ calls New once with the log.format and log.level keys of
// its config, then For to add who is logging; packages below take the
// resulting zerolog.Logger injected, never a global one. Watermill adapts a
// logger for the watermill library. Nothing here changes zerolog's
// package-level settings.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/rs/zerolog"
)

// The fixed field names. Use these, not string literals, for these facts.
const (
	FieldPair    = "pair"
	FieldNode    = "node"
	FieldRole    = "role"
	FieldEpoch   = "epoch"
	FieldSubject = "subject"
	FieldService = "service"
	FieldState   = "state"
	FieldReason  = "reason"
)

// Formats.
const (
	FormatJSON    = "json"
	FormatConsole = "console"
)

// TimeFormat is the layout of the time field: RFC 3339 with milliseconds.
// Times are written in UTC.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

var levels = map[string]zerolog.Level{
	"trace": zerolog.TraceLevel,
	"debug": zerolog.DebugLevel,
	"info":  zerolog.InfoLevel,
	"warn":  zerolog.WarnLevel,
	"error": zerolog.ErrorLevel,
}

// New returns a logger writing to w in format (FormatJSON or FormatConsole)
// the events at level ("trace", "debug", "info", "warn" or "error") and
// above, each with a "time" field. w must be safe for concurrent writes if
// the logger is used from several goroutines (an *os.File is).
func New(w io.Writer, format, level string) (zerolog.Logger, error) {
	lvl, ok := levels[level]
	if !ok {
		return zerolog.Nop(), fmt.Errorf("log level %q: want trace, debug, info, warn or error", level)
	}
	switch format {
	case FormatJSON:
		w = uniqueKeys{w}
	case FormatConsole:
		w = console(w)
	default:
		return zerolog.Nop(), fmt.Errorf("log format %q: want json or console", format)
	}
	return zerolog.New(w).Level(lvl).Hook(timestamp{}), nil
}

// For adds the fields that say who is logging.
func For(l zerolog.Logger, service, pair, node, role string) zerolog.Logger {
	c := l.With()
	if service != "" {
		c = c.Str(FieldService, service)
	}
	return c.Str(FieldPair, pair).Str(FieldNode, node).Str(FieldRole, role).Logger()
}

// Watermill adapts l for the watermill library. Watermill's info messages
// (handlers and subscribers starting and stopping) are logged at debug: at
// info, Tandem logs only its own state transitions.
func Watermill(l zerolog.Logger) watermill.LoggerAdapter {
	h := untimed{zerolog.NewSlogHandler(l)}
	return watermill.NewSlogLoggerWithLevelMapping(slog.New(h), map[slog.Level]slog.Level{
		slog.LevelInfo: slog.LevelDebug,
	})
}

// timestamp adds the time field when an event is written. It stands in for
// zerolog's Timestamp(), whose format is a zerolog package-level setting.
type timestamp struct{}

func (timestamp) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().UTC().Format(TimeFormat))
}

// untimed drops slog's record time, which zerolog's handler would write as a
// second time field beside the one the timestamp hook writes.
type untimed struct{ slog.Handler }

func (h untimed) Handle(ctx context.Context, r slog.Record) error {
	r.Time = time.Time{}
	return h.Handler.Handle(ctx, r)
}

func (h untimed) WithAttrs(attrs []slog.Attr) slog.Handler {
	return untimed{h.Handler.WithAttrs(attrs)}
}

func (h untimed) WithGroup(name string) slog.Handler { return untimed{h.Handler.WithGroup(name)} }

func console(w io.Writer) zerolog.ConsoleWriter {
	return zerolog.ConsoleWriter{
		Out:          w,
		NoColor:      !isTerminal(w),
		TimeFormat:   TimeFormat,
		TimeLocation: time.UTC,
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
