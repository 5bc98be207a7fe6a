package natsnode

import (
	"fmt"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// natsLogger routes nats-server's log lines into zerolog. Notices are debug:
// they are the server's chatter (banner, every connection); the link state is
// logged once per change at info by the watcher.
type natsLogger struct {
	l     zerolog.Logger
	fatal chan<- string // the first fatal message, for Start (size 1)
}

var _ server.Logger = natsLogger{}

func (n natsLogger) Noticef(format string, v ...any) { n.l.Debug().Msgf(format, v...) }
func (n natsLogger) Warnf(format string, v ...any)   { n.l.Warn().Msgf(format, v...) }
func (n natsLogger) Errorf(format string, v ...any)  { n.l.Error().Msgf(format, v...) }
func (n natsLogger) Debugf(format string, v ...any)  { n.l.Debug().Msgf(format, v...) }
func (n natsLogger) Tracef(format string, v ...any)  { n.l.Trace().Msgf(format, v...) }

// Fatalf logs at error: an embedded server must not exit the process. The
// failures it reports (a port in use) make Start fail at once, with this
// message.
func (n natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	n.l.Error().Bool("fatal", true).Msg(msg)
	select {
	case n.fatal <- msg:
	default:
	}
}

// enabled reports whether l writes lines of level lvl, so that the server
// formats debug and trace lines only when someone reads them.
func enabled(l zerolog.Logger, lvl zerolog.Level) bool {
	return l.GetLevel() <= lvl && zerolog.GlobalLevel() <= lvl
}
