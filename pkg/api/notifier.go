package api

// The notifier's wire contract (SPEC §5, N1–N7): the notification sessions
// receive, the acknowledgement they send back, the notifier's status, and
// the pair configuration the notifier reads from the database through the
// replicator.
//
// # The pair configuration (replicator verb repl.config)
//
// Request: ConfigRequest on subject.ReplConfig(pair, node), i.e.
// tandem.<pair>.admin.<node>.repl.config, answered by <node>'s replicator
// from <node>'s own database. Reply: reply.OK(ConfigReply) or a refusal
// (reply.CodeUnavailable when the database cannot be read, CodeBadRequest /
// CodeWrongPair from Decode).
//
// The replicator reads two application tables (SPEC R6: the application owns
// them; they are replicated like any other table if listed in
// database.tables). Their names come in the request (defaults below):
//
//	hosts(node TEXT PRIMARY KEY, host TEXT NOT NULL)
//	    the client-facing host of each node, e.g. ('a','print-a')
//	resources(node TEXT NOT NULL, name TEXT NOT NULL, address TEXT NOT NULL,
//	          PRIMARY KEY (node, name))
//	    every resource a session may connect to, per node, e.g.
//	    ('a','Floor3','\\print-a\Floor3'), ('b','Floor3','\\print-b\Floor3-B')
//
// The replicator runs `SELECT node, host FROM <hosts>` and
// `SELECT node, name, address FROM <resources> ORDER BY node, name`, and
// answers ConfigReply{Config: PairConfig{Hosts, Resources}, ReadAt: now}. A
// table that does not exist is an empty part (not an error); rows whose
// values break PairConfig.Validate, or that name a node other than the
// pair's two, are left out and counted in Skipped. Table names must pass
// ValidTable, or the request is refused (CodeBadRequest). At
// most MaxResources resources are sent (the reply must stay under
// MaxConfigReply bytes, within NATS's default 1 MB payload).
//
// The same resource name on both nodes is one logical resource: when its
// address on the new node is not the old address with the host replaced,
// the notification carries a rename (old address → new address).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/jsonscan"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// VerbReplConfig is the replicator verb that returns the pair configuration.
const VerbReplConfig = subject.ReplConfigVerb

// Default application table names of the pair configuration.
const (
	DefaultHostsTable     = "hosts"
	DefaultResourcesTable = "resources"
)

// Limits of the notifier's wire messages.
const (
	MaxResources     = 4096
	MaxConfigReply   = 1000 << 10 // bytes
	MaxNotification  = 256 << 10  // bytes
	MaxAck           = 16 << 10   // bytes
	MaxAckSwitches   = 256
	maxFieldLen      = 1024
	MaxNotifyRenames = MaxResources
)

// ConfigRequest asks node's replicator for the pair configuration.
type ConfigRequest struct {
	Request
	Node           string `json:"node"`
	HostsTable     string `json:"hosts_table"`
	ResourcesTable string `json:"resources_table"`
}

func (r *ConfigRequest) head() Request { return r.Request }

// Validate checks the node and the table names (ValidTable).
func (r ConfigRequest) Validate() error {
	switch {
	case !subject.ValidName(r.Node):
		return fmt.Errorf("config request: node %q", r.Node)
	case !ValidTable(r.HostsTable):
		return fmt.Errorf("config request: hosts table %q", r.HostsTable)
	case !ValidTable(r.ResourcesTable):
		return fmt.Errorf("config request: resources table %q", r.ResourcesTable)
	}
	return nil
}

// ValidTable reports whether s may name an application table of the pair
// configuration: 1–64 of [A-Za-z0-9_], not starting with a digit, and not
// one of SQLite's (sqlite_) or Tandem's (_tandem_) own tables.
func ValidTable(s string) bool {
	if s == "" || len(s) > 64 || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	l := strings.ToLower(s)
	return !strings.HasPrefix(l, "sqlite_") && !strings.HasPrefix(l, "_tandem_")
}

// Resource is one row of the resources table.
type Resource struct {
	Node    string `json:"node"`
	Name    string `json:"name"`
	Address string `json:"address"`
}

// PairConfig is the pair's configuration as the database holds it.
type PairConfig struct {
	Hosts     map[string]string `json:"hosts"`
	Resources []Resource        `json:"resources"`
}

// ConfigReply answers ConfigRequest.
type ConfigReply struct {
	Config  PairConfig `json:"config"`
	ReadAt  time.Time  `json:"read_at"`
	Skipped int        `json:"skipped,omitempty"`
}

// Validate checks node names, lengths and counts.
func (c PairConfig) Validate() error {
	if len(c.Hosts) > 2 {
		return fmt.Errorf("%d hosts: a pair has two nodes", len(c.Hosts))
	}
	for n, h := range c.Hosts {
		if !subject.ValidName(n) || !validField(h) {
			return fmt.Errorf("host of node %q: %q", n, h)
		}
	}
	if len(c.Resources) > MaxResources {
		return fmt.Errorf("%d resources, limit %d", len(c.Resources), MaxResources)
	}
	for _, r := range c.Resources {
		if !subject.ValidName(r.Node) || !validField(r.Name) || !validField(r.Address) {
			return fmt.Errorf("resource %q of node %q: %q", r.Name, r.Node, r.Address)
		}
	}
	return nil
}

// DecodeConfigReply decodes and validates a repl.config reply.
func DecodeConfigReply(b []byte) (ConfigReply, error) {
	var out ConfigReply
	if len(b) > MaxConfigReply {
		return out, fmt.Errorf("config reply of %d bytes: %w", len(b), event.ErrTooLarge)
	}
	if err := decodeReplyUpTo(b, &out); err != nil {
		return ConfigReply{}, err
	}
	if err := out.Config.Validate(); err != nil {
		return ConfigReply{}, fmt.Errorf("config reply: %w", err)
	}
	return out, nil
}

// decodeReplyUpTo is reply.Decode for replies larger than reply.MaxSize (the
// caller checks the size): a refusal comes back as *reply.Error.
func decodeReplyUpTo(b []byte, v any) error {
	var head struct {
		OK    *bool        `json:"ok"`
		Error *reply.Error `json:"error"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return fmt.Errorf("decode reply: %w", err)
	}
	switch {
	case head.OK == nil:
		return errors.New("decode reply: no \"ok\" field")
	case !*head.OK && head.Error == nil:
		return &reply.Error{Code: reply.CodeInternal, Message: "refused without a reason"}
	case !*head.OK:
		return head.Error
	}
	return json.Unmarshal(b, v)
}

func validField[S string | []byte](s S) bool {
	if len(s) == 0 || len(s) > maxFieldLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// Sources of the host map a notification carries (N4).
const (
	SourceDatabase = "database"      // read from the database just now (the replicator answered)
	SourceCache    = "cache"         // the replicator did not answer: the configuration read earlier
	SourceLocal    = "configuration" // never read from the database: the notifier's own hosts
)

// NotificationVersion is the schema version of Notification and SessionAck.
const NotificationVersion = 1

// Notification tells a pair's sessions which node is active (N1). It is
// published on subject.Notify(pair), kept as the value of key <pair> in
// bucket subject.StateBucket, and sent as SSE data by the push endpoint.
type Notification struct {
	V     int    `json:"v"`
	Pair  string `json:"pair"`
	Epoch uint64 `json:"epoch"`
	// Active is the node now active; Failed the node sessions leave (the
	// other node), empty when unknown.
	Active string `json:"active"`
	Failed string `json:"failed,omitempty"`
	// Hosts maps the failed node's client-facing host to the active one's.
	Hosts map[string]string `json:"hosts"`
	// Renames maps an old resource address to its new address where the
	// resource is named differently on the active node.
	Renames map[string]string `json:"renames,omitempty"`
	// Missing lists the failed node's resource addresses that have no
	// resource of the same name on the active node (resources table):
	// sessions leave them as they are and report them (N8).
	Missing []string `json:"missing,omitempty"`
	Reason  string   `json:"reason"`
	Outage  bool     `json:"outage"`
	// Time is when the node was activated.
	Time time.Time `json:"time"`
	// Source says where Hosts and Renames come from (N4): database, cache
	// or configuration (never read from the database yet).
	Source string `json:"source"`
	// Event is the id of the activation event this notification answers.
	Event string `json:"event,omitempty"`
}

// Validate checks every field.
func (n Notification) Validate() error {
	switch {
	case n.V != NotificationVersion:
		return fmt.Errorf("notification: schema version %d, want %d", n.V, NotificationVersion)
	case !subject.ValidName(n.Pair):
		return fmt.Errorf("notification: pair %q", n.Pair)
	case n.Epoch == 0:
		return fmt.Errorf("notification: epoch 0")
	case n.Epoch > event.MaxEpoch:
		return fmt.Errorf("notification: epoch %d beyond %d", n.Epoch, event.MaxEpoch)
	case !subject.ValidName(n.Active):
		return fmt.Errorf("notification: active node %q", n.Active)
	case n.Failed != "" && (!subject.ValidName(n.Failed) || n.Failed == n.Active):
		return fmt.Errorf("notification: failed node %q", n.Failed)
	case n.Source != SourceDatabase && n.Source != SourceCache && n.Source != SourceLocal:
		return fmt.Errorf("notification: source %q", n.Source)
	case len(n.Hosts) > 2 || len(n.Renames) > MaxNotifyRenames || len(n.Missing) > MaxResources || len(n.Reason) > maxFieldLen:
		return fmt.Errorf("notification: too many hosts or renames, or reason too long")
	}
	for _, m := range []map[string]string{n.Hosts, n.Renames} {
		for k, v := range m {
			if !validField(k) || !validField(v) {
				return fmt.Errorf("notification: mapping %q → %q", k, v)
			}
		}
	}
	for _, m := range n.Missing {
		if !validField(m) {
			return fmt.Errorf("notification: missing resource %q", m)
		}
	}
	return nil
}

// DecodeNotification strictly decodes and validates a notification.
func DecodeNotification(b []byte) (Notification, error) {
	var n Notification
	if err := event.DecodeStrict(b, MaxNotification, &n); err != nil {
		return Notification{}, fmt.Errorf("notification: %w", err)
	}
	return n, n.Validate()
}

// Kinds of SessionAck.
const (
	AckHello    = "hello"    // the session is (re)connected and at Epoch
	AckSwitched = "switched" // the session applied the notification of Epoch
	AckBye      = "bye"      // the session ends: forget it
)

// Switch is one connection a session moved.
type Switch struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Skip is one connection a session should have moved and did not: a
// resource missing on the active node, or a change the operating system
// refused, with the reason.
type Skip struct {
	Address string `json:"address"`
	Reason  string `json:"reason"`
}

// SessionAck is what a session publishes on subject.Ack(pair, session)
// (or POSTs to the push endpoint): that it is at Epoch and what it switched
// to get there (N2, N6).
type SessionAck struct {
	V        int      `json:"v"`
	Pair     string   `json:"pair"`
	Session  string   `json:"session"`
	Kind     string   `json:"kind"`
	Epoch    uint64   `json:"epoch"`
	Switched []Switch `json:"switched,omitempty"`
	// Skipped is what the session left as it was, and why (N8).
	Skipped []Skip `json:"skipped,omitempty"`
	// MS is how long the session took from the activation to the switch.
	MS int64 `json:"ms,omitempty"`
}

// Validate checks every field.
func (a SessionAck) Validate() error {
	switch {
	case a.V != NotificationVersion:
		return fmt.Errorf("ack: schema version %d, want %d", a.V, NotificationVersion)
	case !subject.ValidName(a.Pair):
		return fmt.Errorf("ack: pair %q", a.Pair)
	case !subject.ValidSession(a.Session):
		return fmt.Errorf("ack: session %q", a.Session)
	case a.Kind != AckHello && a.Kind != AckSwitched && a.Kind != AckBye:
		return fmt.Errorf("ack: kind %q", a.Kind)
	case len(a.Switched) > MaxAckSwitches || len(a.Skipped) > MaxAckSwitches:
		return fmt.Errorf("ack: %d switches and %d skipped, limit %d each", len(a.Switched), len(a.Skipped), MaxAckSwitches)
	case a.MS < 0:
		return fmt.Errorf("ack: negative ms")
	}
	for _, s := range a.Switched {
		if !validField(s.From) || !validField(s.To) {
			return fmt.Errorf("ack: switch %q → %q", s.From, s.To)
		}
	}
	for _, s := range a.Skipped {
		if !validField(s.Address) || !validField(s.Reason) {
			return fmt.Errorf("ack: skipped %q: %q", s.Address, s.Reason)
		}
	}
	return nil
}

// DecodeAck strictly decodes and validates a session acknowledgement.
//
// A notifier decodes one per session per failover (10,000 at once), so the
// form sessions send — the field names as written, no null, no escapes but
// \\, \" and \/, integers without sign or exponent, each field once — is
// read by a scanner (ackScanner) that gives exactly what DecodeStrict gives
// for it; anything else goes through DecodeStrict.
func DecodeAck(b []byte) (SessionAck, error) {
	if len(b) <= MaxAck {
		if a, ok := decodeAckFast(b); ok {
			return a, a.Validate()
		}
	}
	var a SessionAck
	if err := event.DecodeStrict(b, MaxAck, &a); err != nil {
		return SessionAck{}, fmt.Errorf("ack: %w", err)
	}
	return a, a.Validate()
}

// AppendAck appends a's JSON encoding to dst: what encoding/json writes,
// except that no character is escaped but \\ and " (so that DecodeAck reads
// it on its fast path); a string that would need another escape, or a
// skipped connection (rare: the fast path does not read them), makes it use
// encoding/json.
func AppendAck(dst []byte, a SessionAck) []byte {
	if len(a.Skipped) > 0 {
		b, _ := json.Marshal(a)
		return append(dst, b...)
	}
	plain := plainString(a.Pair) && plainString(a.Session) && plainString(a.Kind)
	for _, s := range a.Switched {
		plain = plain && plainString(s.From) && plainString(s.To)
	}
	if !plain {
		b, _ := json.Marshal(a)
		return append(dst, b...)
	}
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(a.V), 10)
	dst = appendField(dst, `,"pair":`, a.Pair)
	dst = appendField(dst, `,"session":`, a.Session)
	dst = appendField(dst, `,"kind":`, a.Kind)
	dst = append(dst, `,"epoch":`...)
	dst = strconv.AppendUint(dst, a.Epoch, 10)
	if len(a.Switched) > 0 {
		dst = append(dst, `,"switched":[`...)
		for i, s := range a.Switched {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendField(dst, `{"from":`, s.From)
			dst = appendField(dst, `,"to":`, s.To)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if a.MS != 0 {
		dst = append(dst, `,"ms":`...)
		dst = strconv.AppendInt(dst, a.MS, 10)
	}
	return append(dst, '}')
}

// plainString reports whether s is valid UTF-8 without control characters
// (one pass over ASCII, as the names and addresses of acknowledgements
// mostly are).
func plainString(s string) bool {
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return false
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	return ascii || utf8.ValidString(s)
}

func appendField(dst []byte, key, s string) []byte {
	dst = append(append(dst, key...), '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '"' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

// Limits of a batch of acknowledgements (subject.AckBatch): at most
// MaxAckBatch lines of at most MaxAck bytes each, and MaxAckBatchBytes in
// all (under NATS's default 1 MB payload).
const (
	MaxAckBatch      = 1024
	MaxAckBatchBytes = 512 << 10
)

// DecodeAckBatch decodes a batch of acknowledgements: one SessionAck per
// line, each as DecodeAck decodes and validates it, all of pair. A batch
// with any line that fails is refused whole.
func DecodeAckBatch(b []byte, pair string) ([]SessionAck, error) {
	var out []SessionAck
	err := ackLines(b, func(n int) { out = make([]SessionAck, 0, n) }, func(line []byte) error {
		a, err := DecodeAck(line)
		if err == nil && a.Pair != pair {
			err = fmt.Errorf("ack: pair %q, want %q", a.Pair, pair)
		}
		out = append(out, a)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AckCount is what a notifier counts of one acknowledgement: the session,
// its kind (AckHello, AckSwitched or AckBye), its epoch and how many
// connections it switched.
type AckCount struct {
	Session  string
	Kind     string
	Epoch    uint64
	Switched int
}

// Count is what a notifier counts of a.
func (a SessionAck) Count() AckCount {
	return AckCount{Session: a.Session, Kind: a.Kind, Epoch: a.Epoch, Switched: len(a.Switched)}
}

// CountAckBatch refuses exactly the batches DecodeAckBatch refuses, with
// the same errors, and returns what a notifier counts of each line of the
// others. A line in the form sessions send (see DecodeAck) is checked in
// place: the connections it switched are validated and counted, not
// copied (issue 19: decoding 10,000 acknowledgements whole was a notifier's
// largest cost of a failover); any other line goes through DecodeAck.
func CountAckBatch(b []byte, pair string) ([]AckCount, error) {
	var out []AckCount
	var sc ackScanner // one for the batch's lines (jsonscan.Scanner.Reset)
	err := ackLines(b, func(n int) { out = make([]AckCount, 0, n) }, func(line []byte) error {
		c, err := countAck(&sc, line, pair)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CountAck is CountAckBatch for one acknowledgement: it refuses what
// DecodeAck refuses, and one of another pair than pair.
func CountAck(b []byte, pair string) (AckCount, error) {
	var sc ackScanner
	return countAck(&sc, b, pair)
}

// countAck is CountAck reading b with sc.
func countAck(sc *ackScanner, b []byte, pair string) (AckCount, error) {
	if len(b) <= MaxAck {
		if c, ok := countAckFast(sc, b, pair); ok {
			return c, nil
		}
	}
	a, err := DecodeAck(b)
	if err == nil && a.Pair != pair {
		err = fmt.Errorf("ack: pair %q, want %q", a.Pair, pair)
	}
	return a.Count(), err
}

// ackLines checks a batch's limits, calls start with its number of lines,
// then each with every line in turn, stopping at the first error.
func ackLines(b []byte, start func(n int), each func(line []byte) error) error {
	if len(b) > MaxAckBatchBytes {
		return fmt.Errorf("ack batch: %w: %d bytes, limit %d", event.ErrTooLarge, len(b), MaxAckBatchBytes)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	n := bytes.Count(b, []byte("\n")) + 1
	if n > MaxAckBatch {
		return fmt.Errorf("ack batch: %d acknowledgements, limit %d", n, MaxAckBatch)
	}
	start(n)
	for i := 0; len(b) > 0 || i == 0; i++ {
		line, rest, _ := bytes.Cut(b, []byte("\n"))
		if err := each(line); err != nil {
			return fmt.Errorf("ack batch, line %d: %w", i+1, err)
		}
		b = rest
	}
	return nil
}

// SessionFromAckSubject is the session token of an ack subject of pair, or
// "" when subj is not one.
func SessionFromAckSubject(pair, subj string) string {
	rest, ok := strings.CutPrefix(subj, subject.Ack(pair, ""))
	if !ok || strings.Contains(rest, ".") {
		return ""
	}
	return rest
}

// NotifierStatusRequest asks every notifier of the pair for its status.
type NotifierStatusRequest struct {
	Request
}

func (r *NotifierStatusRequest) head() Request { return r.Request }

// NotifierSessionsRequest asks a node's notifier for the sessions it knows
// (subject.NotifierSessions), in name order: at most Limit of those named
// after After.
type NotifierSessionsRequest struct {
	Request
	After string `json:"after,omitempty"`
	Limit int    `json:"limit"`
}

func (r *NotifierSessionsRequest) head() Request { return r.Request }

// MaxSessionsPage bounds the sessions of one NotifierSessionsReply (a page
// of the longest names stays well under reply.MaxSize).
const MaxSessionsPage = 1000

// KnownSession is a session as a notifier knows it: the newest epoch it
// acknowledged, and how many connections it switched for that epoch.
type KnownSession struct {
	Session  string `json:"session"`
	Epoch    uint64 `json:"epoch"`
	Switched int    `json:"switched,omitempty"`
}

// NotifierSessionsReply is a page of the sessions a notifier knows; More
// says that sessions after the last one follow.
type NotifierSessionsReply struct {
	Sessions []KnownSession `json:"sessions"`
	More     bool           `json:"more,omitempty"`
}

// Validate checks a page as its requester must: at most MaxSessionsPage
// sessions, valid names in increasing order after after, epochs at most
// event.MaxEpoch, switch counts within an acknowledgement's limit.
func (r NotifierSessionsReply) Validate(after string) error {
	if len(r.Sessions) > MaxSessionsPage {
		return fmt.Errorf("sessions page: %d sessions, limit %d", len(r.Sessions), MaxSessionsPage)
	}
	prev := after
	for _, k := range r.Sessions {
		switch {
		case !subject.ValidSession(k.Session):
			return fmt.Errorf("sessions page: session %q", k.Session)
		case k.Session <= prev:
			return fmt.Errorf("sessions page: session %q after %q, not in order", k.Session, prev)
		case k.Epoch > event.MaxEpoch:
			return fmt.Errorf("sessions page: session %q at epoch %d, beyond %d", k.Session, k.Epoch, event.MaxEpoch)
		case k.Switched < 0 || k.Switched > MaxAckSwitches:
			return fmt.Errorf("sessions page: session %q switched %d connections", k.Session, k.Switched)
		}
		prev = k.Session
	}
	if r.More && len(r.Sessions) == 0 {
		return errors.New("sessions page: empty, yet more to follow")
	}
	return nil
}

// SessionStatus is one notifier's view of the sessions (N6).
type SessionStatus struct {
	Node string `json:"node"`
	// Epoch and Active are the newest notification the node knows.
	Epoch  uint64 `json:"epoch"`
	Active string `json:"active,omitempty"`
	Source string `json:"source,omitempty"`
	// Known is how many sessions the node has heard from; Acknowledged how
	// many of them are at Epoch.
	Known        int `json:"known"`
	Acknowledged int `json:"acknowledged"`
	// NotifiedMS is how long after the activation the notification went out
	// (this node's notifier published it); AllAckedMS how long after the
	// activation the last known session acknowledged, absent until then.
	NotifiedMS *int64 `json:"notified_ms,omitempty"`
	AllAckedMS *int64 `json:"all_acked_ms,omitempty"`
	// PushClients is the number of SSE clients connected to this node.
	PushClients int `json:"push_clients"`
}

// NotifierStatusReply answers NotifierStatusRequest.
type NotifierStatusReply struct {
	Status SessionStatus `json:"status"`
}

// ackScanner reads the plain form of a SessionAck (see DecodeAck). Each
// method reports false on anything outside that form; the caller then
// decodes with DecodeStrict, so the scanner never decides a refusal.
type ackScanner struct {
	jsonscan.Scanner
}

func decodeAckFast(b []byte) (SessionAck, bool) {
	var a SessionAck
	sc := ackScanner{jsonscan.New(b)}
	_, ok := sc.object(func(k int) bool {
		var ok bool
		var n uint64
		switch k {
		case ackV:
			n, ok = sc.Uint(18)
			a.V = int(n)
		case ackPair:
			a.Pair, ok = sc.Str()
		case ackSession:
			a.Session, ok = sc.Str()
		case ackKind:
			a.Kind, ok = sc.Str()
		case ackEpoch:
			a.Epoch, ok = sc.Uint(20)
		case ackSwitched:
			a.Switched = []Switch{}
			_, ok = sc.switches(func() { a.Switched = append(a.Switched, Switch{}) }, func(from bool, v []byte) bool {
				s := &a.Switched[len(a.Switched)-1]
				if from {
					s.From = string(v)
				} else {
					s.To = string(v)
				}
				return true
			})
		case ackMS:
			n, ok = sc.Uint(18)
			a.MS = int64(n)
		}
		return ok
	})
	if !ok {
		return SessionAck{}, false
	}
	return a, true
}

// countAckFast reads what a notifier counts of an acknowledgement of pair
// in the plain form, checking every field as Validate does without copying
// the connections switched; false when b is not in that form or not valid
// (DecodeAck then says why).
func countAckFast(sc *ackScanner, b []byte, pair string) (AckCount, bool) {
	var c AckCount
	sc.Reset(b)
	seen, ok := sc.object(func(k int) bool {
		var ok bool
		var n uint64
		var v []byte
		switch k {
		case ackV:
			n, ok = sc.Uint(18)
			ok = ok && n == NotificationVersion
		case ackPair:
			v, ok = sc.StrBytes()
			ok = ok && string(v) == pair
		case ackSession:
			c.Session, ok = sc.Str()
			ok = ok && subject.ValidSession(c.Session)
		case ackKind:
			v, ok = sc.StrBytes()
			c.Kind = kindOf(v)
			ok = ok && c.Kind != ""
		case ackEpoch:
			c.Epoch, ok = sc.Uint(20)
		case ackSwitched:
			strs := 0
			c.Switched, ok = sc.switches(func() {}, func(_ bool, v []byte) bool {
				strs++
				return validField(v)
			})
			ok = ok && strs == 2*c.Switched // a from and a to in each
		case ackMS:
			_, ok = sc.Uint(18)
		}
		return ok
	})
	if !ok || !seen[ackV] || !seen[ackPair] || !seen[ackSession] || !seen[ackKind] || c.Switched > MaxAckSwitches {
		return AckCount{}, false
	}
	return c, true
}

// kindOf is the kind constant kind names, or "".
func kindOf(kind []byte) string {
	for _, k := range []string{AckSwitched, AckHello, AckBye} {
		if string(kind) == k {
			return k
		}
	}
	return ""
}

// The keys of an acknowledgement the fast path reads, by index.
const (
	ackV = iota
	ackPair
	ackSession
	ackKind
	ackEpoch
	ackSwitched
	ackMS
	ackKeys
)

// object reads an acknowledgement's object: for each key, field reads the
// value (given the key's index). It reports which keys it saw, and false on
// anything outside the plain form, an unknown or repeated key, or a value
// field refused.
func (sc *ackScanner) object(field func(k int) bool) ([ackKeys]bool, bool) {
	var seen [ackKeys]bool
	if !sc.Byte('{') {
		return seen, false
	}
	for more := !sc.Byte('}'); more; {
		key, ok := sc.Key()
		if !ok {
			return seen, false
		}
		k := -1
		switch string(key) {
		case "v":
			k = ackV
		case "pair":
			k = ackPair
		case "session":
			k = ackSession
		case "kind":
			k = ackKind
		case "epoch":
			k = ackEpoch
		case "switched":
			k = ackSwitched
		case "ms":
			k = ackMS
		}
		if k < 0 || seen[k] || !field(k) {
			return seen, false
		}
		seen[k] = true
		if more, ok = sc.Next(); !ok {
			return seen, false
		}
	}
	return seen, sc.End()
}

// switches reads [{"from": …, "to": …}, …] of at most MaxAckSwitches+1
// objects (more is refused): next is called before each object, and val
// with each string as it is read (its bytes valid only during the call).
// It returns the number of objects.
func (sc *ackScanner) switches(next func(), val func(from bool, v []byte) bool) (int, bool) {
	if !sc.Byte('[') {
		return 0, false
	}
	if sc.Byte(']') {
		return 0, true
	}
	for n := 1; n <= MaxAckSwitches+1; n++ {
		next()
		if !sc.switchObject(val) {
			return 0, false
		}
		if sc.Byte(']') {
			return n, true
		}
		if !sc.Byte(',') {
			return 0, false
		}
	}
	return 0, false
}

// switchObject reads {"from": …, "to": …}, each at most once.
func (sc *ackScanner) switchObject(val func(from bool, v []byte) bool) bool {
	var from, to bool
	if !sc.Byte('{') {
		return false
	}
	for more := !sc.Byte('}'); more; {
		key, ok := sc.Key()
		if !ok {
			return false
		}
		isFrom := string(key) == "from"
		switch {
		case isFrom && !from:
			from = true
		case string(key) == "to" && !to:
			to = true
		default:
			return false
		}
		v, ok := sc.StrBytes()
		if !ok || !val(isFrom, v) {
			return false
		}
		if more, ok = sc.Next(); !ok {
			return false
		}
	}
	return true
}
