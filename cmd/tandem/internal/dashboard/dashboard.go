// Package dashboard is the live web dashboard every node serves at / of its
// admin address (admin.listen): the pair as that node sees it — both nodes,
// replication, sessions, licenses, the newest events and the timeline of the
// last failover — updated live over Server-Sent Events, and rendered on the
// server, so that it reads the same with JavaScript disabled.
//
// Where the data comes from: the admin request/reply verbs over NATS that
// `tandem status` uses (every node of the pair answers), and the event
// streams on the node's own NATS server (its own and its mirror of the
// peer's), so the page keeps working when the peer is dead. Build turns one
// gathering into a View; it is pure and tested on its own.
//
// Access (Access.Check, one function): with credentials configured every
// request needs them and the actions (switchover, maintenance, replication
// pause and resume) are offered; they go through the same admin verbs, and
// meet the same refusals, as the CLI. Without credentials the page is open
// and read-only on a loopback address, and refused anywhere else.
//
// # Concurrency
//
// Run owns the gathering loop: it alone gathers, builds and renders, then
// stores the newest page and wakes the subscribers. It gathers only while
// a browser watches or a page is asked for, so an unwatched dashboard costs
// the node nothing. The HTTP handlers run
// in net/http's goroutines and only read the newest page (mu) or wait for
// the next one on their own channel of size 1, which Run fills without
// blocking (a slow browser skips pages, it never holds the loop up).
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/subject"
)

//go:embed assets
var assets embed.FS

var tmpl = template.Must(template.New("").Funcs(template.FuncMap{
	"eq2":   func(a, b string) bool { return a == b },
	"deref": func(b *bool) bool { return b != nil && *b },
}).ParseFS(assets, "assets/*.html"))

// Interval is how often the dashboard gathers when nothing happens; an
// event of the pair makes it gather at once.
const Interval = time.Second

// Options configure a Dashboard.
type Options struct {
	Pair, Node string
	Conn       *nats.Conn          // the node's connection (admin verbs reach both nodes)
	JS         jetstream.JetStream // the node's own JetStream domain (the event streams)
	Access     Access
	Log        zerolog.Logger
	// Wait bounds each gathering's wait for the nodes' answers; 0 means 800 ms.
	Wait time.Duration
}

// Dashboard serves the page and runs the loop that keeps it current.
type Dashboard struct {
	o   Options
	src *source
	log zerolog.Logger

	want    chan struct{} // a page is asked for: gather now (size 1)
	stopped chan struct{} // closed when Run returns: streams end

	mu   sync.Mutex // guards the fields below
	page page
	subs map[chan page]struct{}
}

// page is one rendering of the view.
type page struct {
	seq  uint64
	at   time.Time // when it was gathered
	view View
	live []byte // the live part of the HTML, as SSE sends it
}

// New returns a dashboard; Run keeps it current, Handler serves it.
func New(o Options) *Dashboard {
	if o.Wait <= 0 {
		o.Wait = 800 * time.Millisecond
	}
	return &Dashboard{o: o, src: newSource(o.Pair, o.Node, o.Conn, o.JS, o.Wait),
		log: o.Log.With().Str("service", "dashboard").Logger(), subs: map[chan page]struct{}{},
		want: make(chan struct{}, 1), stopped: make(chan struct{})}
}

// Ready is always nil: the page shows what it can while nodes do not answer.
func (d *Dashboard) Ready() error { return nil }

// Run gathers while someone watches: every Interval while a browser holds
// the event stream open, at once when an event of the pair is published,
// and when a page is asked for. Nobody watching costs nothing. It runs
// until ctx ends, and then ends every open stream. It never fails: a
// dashboard that cannot gather says so on the page, and takes nothing else
// of the node down.
func (d *Dashboard) Run(ctx context.Context) error {
	defer close(d.stopped)
	kick := make(chan struct{}, 1)
	sub, err := d.o.Conn.Subscribe(subject.Events(d.o.Pair), func(*nats.Msg) {
		select {
		case kick <- struct{}{}:
		default:
		}
	})
	if err != nil {
		d.log.Warn().Err(err).Msg("cannot follow the pair's events; the dashboard updates every second only")
	} else {
		defer sub.Unsubscribe() //nolint:errcheck // the connection may be closed already
	}
	// The ticker runs only while someone watches: an unwatched dashboard
	// does not wake the node every second (a subscriber asks at once).
	tk := time.NewTicker(Interval)
	defer tk.Stop()
	tk.Stop()
	ticking := false
	for {
		if w := d.watched(); w != ticking {
			if w {
				tk.Reset(Interval)
			} else {
				tk.Stop()
			}
			ticking = w
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.want:
		case <-tk.C:
			if !d.watched() {
				continue
			}
		case <-kick:
			if !d.watched() {
				continue
			}
			// Let the events of one transition arrive together.
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return nil
			}
		}
		d.refresh(ctx)
	}
}

// watched reports whether a browser holds the event stream open.
func (d *Dashboard) watched() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.subs) > 0
}

// ask makes Run gather now.
func (d *Dashboard) ask() {
	select {
	case d.want <- struct{}{}:
	default:
	}
}

func (d *Dashboard) refresh(ctx context.Context) {
	gctx, cancel := context.WithTimeout(ctx, d.o.Wait+2*time.Second)
	in := d.src.gather(gctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	in.Now = time.Now()
	d.publish(Build(in))
}

// publish renders v, makes it the newest page and hands it to every
// subscriber.
func (d *Dashboard) publish(v View) {
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, "live", d.data(v, "")); err != nil {
		d.log.Error().Err(err).Msg("cannot render the dashboard")
		return
	}
	d.mu.Lock()
	d.page = page{seq: d.page.seq + 1, at: time.Now(), view: v, live: buf.Bytes()}
	p := d.page
	for ch := range d.subs {
		select {
		case <-ch: // a page the browser has not taken yet: replace it
		default:
		}
		ch <- p
	}
	d.mu.Unlock()
}

// current is the newest page, and false before the first.
func (d *Dashboard) current() (page, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.page, d.page.seq > 0
}

func (d *Dashboard) subscribe() (chan page, func()) {
	ch := make(chan page, 1)
	d.mu.Lock()
	d.subs[ch] = struct{}{}
	d.mu.Unlock()
	return ch, func() {
		d.mu.Lock()
		delete(d.subs, ch)
		d.mu.Unlock()
	}
}

// tmplData is what the templates see.
type tmplData struct {
	View
	Actions bool   // credentials are configured: offer the actions
	Filter  string // the event type shown, "" for all
	Notice  string // the result of an action
}

func (d *Dashboard) data(v View, filter string) tmplData {
	return tmplData{View: v, Actions: d.o.Access.Secured(), Filter: filter}
}

// Handler serves the dashboard: / (the page), /events (SSE),
// /events.jsonl (the events listed, for download), /state.json (the view)
// and POST /action. Every path checks Access first.
func (d *Dashboard) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", d.serveIndex)
	mux.HandleFunc("GET /events", d.serveSSE)
	mux.HandleFunc("GET /events.jsonl", d.serveExport)
	mux.HandleFunc("GET /state.json", d.serveState)
	mux.Handle("POST /action", http.NewCrossOriginProtection().Handler(http.HandlerFunc(d.serveAction)))
	return d.guard(mux)
}

// guard applies the access rule to every request.
func (d *Dashboard) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := d.o.Access.Check(r); err != nil {
			w.Header().Set("Cache-Control", "no-store")
			if errors.Is(err, ErrNotLoopback) {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			w.Header().Add("WWW-Authenticate", `Basic realm="tandem dashboard", charset="UTF-8"`)
			w.Header().Add("WWW-Authenticate", `Bearer realm="tandem dashboard"`)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// fresh returns a page gathered within the last Interval: the newest, or
// the next one, which it asks for and waits for a while.
func (d *Dashboard) fresh(ctx context.Context) (page, bool) {
	if p, ok := d.current(); ok && time.Since(p.at) < Interval {
		return p, true
	}
	ch, stop := d.subscribe()
	defer stop()
	d.ask()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	select {
	case p := <-ch:
		return p, true
	case <-ctx.Done():
		return d.current()
	case <-d.stopped:
		return d.current()
	}
}

func (d *Dashboard) serveIndex(w http.ResponseWriter, r *http.Request) {
	p, _ := d.fresh(r.Context())
	if p.seq == 0 {
		p.view = View{Pair: d.o.Pair, Self: d.o.Node, Time: time.Now().UTC(), Problems: []string{"still gathering the first view"}}
	}
	data := d.data(filterView(p.view, r.URL.Query().Get("type")), r.URL.Query().Get("type"))
	data.Notice = r.URL.Query().Get("notice")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := tmpl.ExecuteTemplate(w, "page", data); err != nil {
		d.log.Warn().Err(err).Msg("dashboard page")
	}
}

// filterView keeps the events of one type, for the page without JavaScript
// (the script filters in the browser).
func filterView(v View, typ string) View {
	if typ == "" {
		return v
	}
	var evs []EventView
	for _, e := range v.Events {
		if e.Type == typ {
			evs = append(evs, e)
		}
	}
	v.Events = evs
	return v
}

// serveSSE streams the live part of the page: the newest at once, then each
// new one. The browser's EventSource reconnects by itself.
func (d *Dashboard) serveSSE(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the admin server's write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	ch, stop := d.subscribe()
	defer stop()
	d.ask()
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	if p, ok := d.current(); ok {
		if writeEvent(w, rc, p) != nil {
			return
		}
	} else if rc.Flush() != nil {
		return
	}
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-d.stopped:
			return
		case p := <-ch:
			if writeEvent(w, rc, p) != nil {
				return
			}
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

func writeEvent(w http.ResponseWriter, rc *http.ResponseController, p page) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "id: %d\nevent: view\n", p.seq)
	for line := range bytes.Lines(p.live) {
		b.WriteString("data: ")
		b.Write(bytes.TrimRight(line, "\r\n"))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	if _, err := w.Write(b.Bytes()); err != nil {
		return err
	}
	return rc.Flush()
}

// serveExport sends the events the page lists (of ?type= if given) as JSON
// lines, oldest first, exactly as the streams hold them.
func (d *Dashboard) serveExport(w http.ResponseWriter, r *http.Request) {
	typ := r.URL.Query().Get("type")
	d.fresh(r.Context())
	evs := newestFirst(d.src.lastEvents())
	if len(evs) > MaxEvents {
		evs = evs[:MaxEvents]
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="tandem-%s-%s-events.jsonl"`, d.o.Pair, d.o.Node))
	w.Header().Set("Cache-Control", "no-store")
	for i := len(evs) - 1; i >= 0; i-- {
		if typ != "" && evs[i].Type != typ {
			continue
		}
		b, err := evs[i].Encode()
		if err != nil {
			continue
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			return
		}
	}
}

func (d *Dashboard) serveState(w http.ResponseWriter, r *http.Request) {
	p, _ := d.fresh(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(p.view)
}
