// Command printq is a stand-in for the application Tandem keeps available —
// the print server of SPEC — in the Docker Compose demo. It is not part of
// Tandem: it only reads the state Tandem publishes, as any protected
// application could.
//
// One printq runs beside each node and keeps print jobs in its own SQLite
// file, which that node's replicator (another process sharing the file)
// keeps in step with the other node's. Job ids are random text, not
// AUTOINCREMENT integers: both nodes may accept jobs during a partition, and
// the replicator merges rows by primary key. printq answers /jobs only while
// its node is active, as key <pair> of bucket subject.StateBucket in the
// node's own JetStream says (api.Notification.Active); /readyz answers 200
// only then, so that a load balancer or a healthcheck finds the active node.
//
//	POST /jobs       {"printer":…,"document":…,"copies":N} → 201 the job
//	GET  /jobs       → {"node":…,"epoch":N,"jobs":[…]} ordered by created, id
//	GET  /jobs/{id}  → the job, or 404
//	GET  /healthz    → 200 while the process runs
//	GET  /readyz     → 200 while the node is active, 503 otherwise
//
// Every flag has an environment fallback, PRINTQ_<FLAG> (e.g. PRINTQ_DB).
//
// # Concurrency
//
// The watcher goroutine (state.go) alone writes the state; HTTP handlers
// read it. A job is inserted while the state is held for reading
// (state.whileActive), so once the watcher has switched the node to not
// active no insert is running or can begin. The goroutine of run owns
// startup and shutdown, in this order: HTTP server, watcher, NATS
// connection, database.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver

	"github.com/tandem-ha/tandem/pkg/logging"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Limits of a job request.
const (
	maxBody    = 64 << 10 // bytes
	maxText    = 200      // characters of printer and document
	maxCopies  = 999
	busyMillis = 5000 // SQLite busy_timeout: how long a write waits for the replicator's lock
)

// shutdownTimeout bounds how long requests in flight may take at exit.
const shutdownTimeout = 5 * time.Second

const schema = `CREATE TABLE IF NOT EXISTS jobs(id TEXT PRIMARY KEY, printer TEXT NOT NULL,
	document TEXT NOT NULL, copies INTEGER NOT NULL DEFAULT 1, state TEXT NOT NULL DEFAULT 'queued',
	node TEXT NOT NULL, created TEXT NOT NULL)`

// createdFormat is fixed-width UTC, so that created sorts as text in time order.
const createdFormat = "2006-01-02T15:04:05.000000Z"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs printq until ctx ends and returns the exit status: 0 after a
// clean shutdown, 1 after an error, printed as one line on stderr (where
// the logs go too).
func run(ctx context.Context, args []string, env func(string) (string, bool), stderr io.Writer) int {
	cfg, err := parseConfig(args, env)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stderr, "usage: printq --db FILE --pair PAIR --node NODE [--listen ADDR] [--nats URL] [--creds FILE] [--tls-ca FILE] [--log-format json|console]")
		return 0
	}
	if err == nil {
		err = serve(ctx, cfg, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "printq: %s\n", strings.Join(strings.Fields(err.Error()), " "))
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg config, stderr io.Writer) error {
	log, err := logging.New(stderr, cfg.logFormat, "info")
	if err != nil {
		return err
	}
	log = log.With().Str(logging.FieldService, "printq").Str(logging.FieldPair, cfg.pair).
		Str(logging.FieldNode, cfg.node).Logger()
	a, err := start(ctx, cfg, log)
	if err != nil {
		return err
	}
	return a.wait(ctx)
}

// config is printq's command line.
type config struct {
	listen, db, pair, node, nats, creds, tlsCA, logFormat string
}

// parseConfig reads the flags; a flag not given takes its value from
// PRINTQ_<NAME> (upper case, '-' → '_') when env has it.
func parseConfig(args []string, env func(string) (string, bool)) (config, error) {
	c := config{}
	fs := flag.NewFlagSet("printq", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.listen, "listen", ":8081", "HTTP listen address")
	fs.StringVar(&c.db, "db", "", "SQLite database file (required)")
	fs.StringVar(&c.pair, "pair", "", "pair name (required)")
	fs.StringVar(&c.node, "node", "", "this node's name (required)")
	fs.StringVar(&c.nats, "nats", "nats://127.0.0.1:4222", "URL of this node's NATS server")
	fs.StringVar(&c.creds, "creds", "", "NATS credentials: a .creds file or an nkey seed file (tandem auth init --roles printq)")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "CA certificate to verify the NATS server with (TLS)")
	fs.StringVar(&c.logFormat, "log-format", logging.FormatJSON, "log format: json or console")
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "PRINTQ_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := env(name); ok && envErr == nil {
			envErr = f.Value.Set(v)
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, c.validate()
}

func (c config) validate() error {
	if c.db == "" {
		return errors.New("--db is required")
	}
	if err := subject.CheckName("pair", c.pair); err != nil {
		return err
	}
	if err := subject.CheckName("node", c.node); err != nil {
		return err
	}
	if c.logFormat != logging.FormatJSON && c.logFormat != logging.FormatConsole {
		return fmt.Errorf("--log-format %q: want json or console", c.logFormat)
	}
	return nil
}

// app is a running printq.
type app struct {
	node   string
	log    zerolog.Logger
	db     *sql.DB
	nc     *nats.Conn
	state  state
	srv    *http.Server
	addr   net.Addr      // where srv listens
	served chan error    // size 1: why srv stopped
	stop   func()        // stops the watcher
	done   chan struct{} // closed when the watcher has returned
}

// start opens the database, connects to NATS, starts watching the node's
// state and serving HTTP.
func start(ctx context.Context, cfg config, log zerolog.Logger) (*app, error) {
	db, err := openDB(ctx, cfg.db)
	if err != nil {
		return nil, err
	}
	a := &app{node: cfg.node, log: log, db: db, served: make(chan error, 1), done: make(chan struct{})}
	w := newWatcher(cfg.pair, cfg.node, &a.state, log)
	if a.nc, err = connect(cfg, w, log); err != nil {
		db.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		a.nc.Close()
		db.Close()
		return nil, err
	}
	a.addr = ln.Addr()
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stop = stop
	go func() { defer close(a.done); w.run(wctx, a.nc) }()
	a.srv = &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
	go func() { a.served <- a.srv.Serve(ln) }()
	log.Info().Str("addr", a.addr.String()).Str("db", cfg.db).Msg("printq listening")
	return a, nil
}

// wait runs until ctx ends or the HTTP server fails, then shuts down.
func (a *app) wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-a.served:
		err = fmt.Errorf("http: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if serr := a.srv.Shutdown(sctx); serr != nil && err == nil {
		err = fmt.Errorf("http shutdown: %w", serr)
	}
	a.stop()
	<-a.done
	a.nc.Close()
	if cerr := a.db.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close database: %w", cerr)
	}
	a.log.Info().Msg("printq stopped")
	return err
}

// openDB opens the SQLite file (WAL, busy_timeout, foreign keys) and
// creates the jobs table if missing.
func openDB(ctx context.Context, path string) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyMillis))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return db, nil
}

// job is one row of the jobs table.
type job struct {
	ID       string `json:"id"`
	Printer  string `json:"printer"`
	Document string `json:"document"`
	Copies   int    `json:"copies"`
	State    string `json:"state"`
	Node     string `json:"node"`
	Created  string `json:"created"`
}

const jobColumns = `id, printer, document, copies, state, node, created`

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /jobs", a.createJob)
	mux.HandleFunc("GET /jobs", a.listJobs)
	mux.HandleFunc("GET /jobs/{id}", a.getJob)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	return mux
}

func (a *app) createJob(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.serving(w); !ok {
		return
	}
	in, err := decodeJob(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	j := job{ID: newID(), Printer: in.Printer, Document: in.Document, Copies: *in.Copies,
		State: "queued", Node: a.node, Created: time.Now().UTC().Format(createdFormat)}
	v, err := a.state.whileActive(a.node, func() error {
		_, err := a.db.ExecContext(r.Context(), `INSERT INTO jobs(`+jobColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			j.ID, j.Printer, j.Document, j.Copies, j.State, j.Node, j.Created)
		return err
	})
	switch {
	case errors.Is(err, errNotActive):
		a.notActive(w, v)
	case err != nil:
		a.dbError(w, "insert job", err)
	default:
		writeJSON(w, http.StatusCreated, j)
	}
}

func (a *app) listJobs(w http.ResponseWriter, r *http.Request) {
	v, ok := a.serving(w)
	if !ok {
		return
	}
	jobs, err := a.queryJobs(r.Context())
	if err != nil {
		a.dbError(w, "list jobs", err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Node  string `json:"node"`
		Epoch uint64 `json:"epoch"`
		Jobs  []job  `json:"jobs"`
	}{a.node, v.epoch, jobs})
}

func (a *app) queryJobs(ctx context.Context) ([]job, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs ORDER BY created, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	jobs := []job{}
	for rows.Next() {
		var j job
		if err := rows.Scan(&j.ID, &j.Printer, &j.Document, &j.Copies, &j.State, &j.Node, &j.Created); err != nil {
			return nil, err
		}
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

func (a *app) getJob(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.serving(w); !ok {
		return
	}
	id := r.PathValue("id")
	var j job
	err := a.db.QueryRowContext(r.Context(), `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id).
		Scan(&j.ID, &j.Printer, &j.Document, &j.Copies, &j.State, &j.Node, &j.Created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		writeError(w, http.StatusNotFound, fmt.Errorf("job %q not found", id))
	case err != nil:
		a.dbError(w, "get job", err)
	default:
		writeJSON(w, http.StatusOK, j)
	}
}

func (a *app) readyz(w http.ResponseWriter, _ *http.Request) {
	v := a.state.get()
	code := http.StatusServiceUnavailable
	if v.active == a.node {
		code = http.StatusOK
	}
	writeJSON(w, code, struct {
		Active     bool   `json:"active"`
		Node       string `json:"node"`
		ActiveNode string `json:"active_node,omitempty"`
		Epoch      uint64 `json:"epoch"`
	}{v.active == a.node, a.node, v.active, v.epoch})
}

// serving reports whether the node is active, and answers 503 when not.
func (a *app) serving(w http.ResponseWriter) (view, bool) {
	v := a.state.get()
	if v.active != a.node {
		a.notActive(w, v)
		return v, false
	}
	return v, true
}

func (a *app) notActive(w http.ResponseWriter, v view) {
	writeJSON(w, http.StatusServiceUnavailable, struct {
		Error  string `json:"error"`
		Active string `json:"active,omitempty"`
		Epoch  uint64 `json:"epoch"`
	}{fmt.Sprintf("node %s is not active", a.node), v.active, v.epoch})
}

func (a *app) dbError(w http.ResponseWriter, what string, err error) {
	a.log.Error().Err(err).Msg(what)
	writeError(w, http.StatusInternalServerError, fmt.Errorf("%s: %w", what, err))
}

// jobRequest is the body of POST /jobs. Copies defaults to 1.
type jobRequest struct {
	Printer  string `json:"printer"`
	Document string `json:"document"`
	Copies   *int   `json:"copies"`
}

// decodeJob reads one JSON object of at most maxBody bytes, without unknown
// fields, and validates it. The error names the field at fault.
func decodeJob(w http.ResponseWriter, r *http.Request) (jobRequest, error) {
	var in jobRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, bodyError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return in, bodyError(err)
	}
	if in.Copies == nil {
		in.Copies = new(1)
	}
	return in, in.validate()
}

// bodyError says what is wrong with a body that did not decode (err is nil
// after a complete first value followed by more data).
func bodyError(err error) error {
	var tooLarge *http.MaxBytesError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return fmt.Errorf("body: larger than %d bytes", maxBody)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Errorf("%s: cannot be JSON %s", typ.Field, typ.Value)
	case err == nil:
		return errors.New("body: more than one JSON value")
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	return fmt.Errorf("body: not a JSON object: %w", err)
}

func (in jobRequest) validate() error {
	for _, f := range []struct{ name, v string }{{"printer", in.Printer}, {"document", in.Document}} {
		if n := utf8.RuneCountInString(f.v); n < 1 || n > maxText {
			return fmt.Errorf("%s: %d characters, want 1 to %d", f.name, n, maxText)
		}
	}
	if c := *in.Copies; c < 1 || c > maxCopies {
		return fmt.Errorf("copies: %d, want 1 to %d", c, maxCopies)
	}
	return nil
}

// newID is a random job id: 16 bytes in hex.
func newID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
