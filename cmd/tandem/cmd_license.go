package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	lic "github.com/tandem-ha/tandem/pkg/license"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func init() {
	commands["license"] = command{"licenses: keygen and issue (vendor side); add, list, check (on a pair)", cmdLicense}
	statusExtras = append(statusExtras, licenseStatusExtra)
	statusLines = append(statusLines, licenseStatusLines)
}

var licenseCommands = map[string]func(ctx context.Context, args []string, out, errOut io.Writer) error{
	"keygen": cmdLicenseKeygen,
	"issue":  cmdLicenseIssue,
	"add":    cmdLicenseAdd,
	"list":   cmdLicenseList,
	"check":  cmdLicenseCheck,
}

func cmdLicense(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) == 0 || licenseCommands[args[0]] == nil {
		fmt.Fprintln(errOut, `usage:
  tandem license keygen --private FILE --public FILE
  tandem license issue --key FILE --customer NAME --features a,b --seats N --expires YYYY-MM-DD --pair P [--product P] [--id ID]
  tandem license add FILE --pair P
  tandem license list --pair P [--json]
  tandem license check FEATURE --pair P [--seat NAME] [--json]`)
		return errUsage
	}
	return licenseCommands[args[0]](ctx, args[1:], out, errOut)
}

// parseMixed parses flags that may come before or after the positional
// arguments (tandem license add FILE --pair P) and returns the positionals.
func parseMixed(fs *flag.FlagSet, args []string, errOut io.Writer) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args, errOut); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func cmdLicenseKeygen(_ context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("license keygen", flag.ContinueOnError)
	privPath := fs.String("private", "", "file to write the vendor's private key to (keep it secret)")
	pubPath := fs.String("public", "", "file to write the public key to (license.public_key of every node)")
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	if *privPath == "" || *pubPath == "" {
		return errors.New("--private and --public are required")
	}
	pub, priv, err := lic.GenerateKey()
	if err != nil {
		return err
	}
	pb, err := lic.MarshalPublicKey(pub)
	if err != nil {
		return err
	}
	kb, err := lic.MarshalPrivateKey(priv)
	if err != nil {
		return err
	}
	if err := writeNew(*privPath, kb, 0o600); err != nil {
		return err
	}
	if err := writeNew(*pubPath, pb, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "private key %s (keep it secret), public key %s\n", *privPath, *pubPath)
	return nil
}

// writeNew writes a file that must not exist yet: a key is never overwritten.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a license or key file", path, limit)
	}
	return b, nil
}

func cmdLicenseIssue(_ context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("license issue", flag.ContinueOnError)
	key := fs.String("key", "", "the vendor's private key file")
	customer := fs.String("customer", "", "customer name")
	product := fs.String("product", "tandem", "product")
	features := fs.String("features", "", "licensed features, comma separated")
	seats := fs.Int("seats", 1, "seats")
	expires := fs.String("expires", "", "last valid day, YYYY-MM-DD (UTC)")
	id := fs.String("id", "", "license id (default: a new unique id)")
	pair := fs.String("pair", "", "bind the license to this pair (a node of another pair refuses it)")
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	if *key == "" {
		return errors.New("--key is required")
	}
	kb, err := readLimited(*key, lic.MaxKeySize)
	if err != nil {
		return err
	}
	priv, err := lic.ParsePrivateKey(kb)
	if err != nil {
		return fmt.Errorf("%s: %w", *key, err)
	}
	if *id == "" {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		*id = hex.EncodeToString(b)
	}
	var feats []string
	for _, f := range strings.Split(*features, ",") {
		if f = strings.TrimSpace(f); f != "" {
			feats = append(feats, f)
		}
	}
	s, err := lic.Sign(priv, lic.Payload{V: lic.Version, ID: *id, Customer: *customer, Product: *product,
		Features: feats, Seats: *seats, Issued: time.Now(), Expires: *expires, Pair: *pair})
	if err != nil {
		return err
	}
	_, err = out.Write(s.Armor())
	return err
}

func cmdLicenseAdd(ctx context.Context, args []string, out, errOut io.Writer) error {
	var p pairFlags
	fs := flag.NewFlagSet("license add", flag.ContinueOnError)
	p.register(fs)
	pos, err := parseMixed(fs, args, errOut)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: tandem license add FILE --pair P")
	}
	text, err := readLimited(pos[0], lic.MaxArmoredSize)
	if err != nil {
		return err
	}
	nc, replies, err := p.open(ctx, "license add")
	if err != nil {
		return err
	}
	defer nc.Close()
	node, err := localNode(nc, replies)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, p.timeout+5*time.Second)
	defer cancel()
	var res api.LicenseAddReply
	req := api.LicenseAddRequest{Request: api.Request{V: api.Version, Pair: p.pair}, License: string(text)}
	if err := reply.Request(rctx, nc, subject.License(p.pair, node, api.VerbLicenseAdd), req, &res); err != nil {
		return err
	}
	if p.json {
		return printJSON(out, res)
	}
	l := res.License
	fmt.Fprintf(out, "license %s added on %s: %s, features %s, %d seats, valid until the end of %s\n",
		l.ID, res.Node, l.Customer, strings.Join(l.Features, ","), l.Seats, l.Expires)
	return nil
}

// gatherLicense sends a license request to every node of the pair and
// decodes the replies that come within wait.
func gatherLicense[T any](ctx context.Context, nc *nats.Conn, pair, verb string, req any, wait time.Duration) ([]T, error) {
	return gatherReplies[T](ctx, nc, subject.License(pair, subject.PairScope, verb), req, wait, fmt.Sprintf("license service of pair %q", pair))
}

func cmdLicenseList(ctx context.Context, args []string, out, errOut io.Writer) error {
	var p pairFlags
	fs := flag.NewFlagSet("license list", flag.ContinueOnError)
	p.register(fs)
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	if err := requirePair(p.pair); err != nil {
		return err
	}
	nc, err := p.connect("license list")
	if err != nil {
		return err
	}
	defer nc.Close()
	replies, err := gatherLicense[api.LicenseListReply](ctx, nc, p.pair, api.VerbLicenseList,
		api.LicenseListRequest{Request: api.Request{V: api.Version, Pair: p.pair}}, p.timeout)
	if err != nil {
		return err
	}
	sortByNode(replies, func(r api.LicenseListReply) string { return r.State.Node })
	if p.json {
		return printJSON(out, replies)
	}
	for _, r := range replies {
		s := r.State
		fmt.Fprintf(out, "node %s (%s): %s — %s%s\n", s.Node, s.Role, s.Status, s.Reason, graceNote(s))
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tCUSTOMER\tFEATURES\tSEATS\tEXPIRES\tVALID")
		for _, l := range r.Licenses {
			valid := "yes"
			if !l.Valid {
				valid = "no: " + l.Reason
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\n", l.ID, l.Customer, strings.Join(l.Features, ","), l.Seats, l.Expires, valid)
		}
		tw.Flush()
	}
	return nil
}

func cmdLicenseCheck(ctx context.Context, args []string, out, errOut io.Writer) error {
	var p pairFlags
	fs := flag.NewFlagSet("license check", flag.ContinueOnError)
	p.register(fs)
	seat := fs.String("seat", "", "hold one of the license's seats for this client name (10 min after its last check)")
	pos, err := parseMixed(fs, args, errOut)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: tandem license check FEATURE --pair P")
	}
	if err := requirePair(p.pair); err != nil {
		return err
	}
	nc, err := p.connect("license check")
	if err != nil {
		return err
	}
	defer nc.Close()
	replies, err := gatherLicense[api.LicenseCheckReply](ctx, nc, p.pair, api.VerbLicenseCheck,
		api.LicenseCheckRequest{Request: api.Request{V: api.Version, Pair: p.pair}, Feature: pos[0], Seat: *seat}, p.timeout)
	if err != nil {
		return err
	}
	sortByNode(replies, func(r api.LicenseCheckReply) string { return r.State.Node })
	var not []string
	for _, r := range replies {
		if !r.Licensed {
			not = append(not, r.State.Node)
		}
	}
	if p.json {
		if err := printJSON(out, replies); err != nil {
			return err
		}
	} else {
		for _, r := range replies {
			verdict := "licensed"
			if !r.Licensed {
				verdict = "NOT licensed"
			}
			fmt.Fprintf(out, "%s (%s): %s %s: %s%s\n", r.State.Node, r.State.Role, pos[0], verdict, r.Reason, graceNote(r.State))
		}
	}
	if len(not) > 0 {
		return fmt.Errorf("feature %s is not licensed on %s", pos[0], strings.Join(not, ", "))
	}
	return nil
}

func graceNote(s api.LicenseState) string {
	if s.GraceLeft == "" {
		return ""
	}
	return " (grace left " + s.GraceLeft + ")"
}

func sortByNode[T any](rs []T, node func(T) string) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && node(rs[j]) < node(rs[j-1]); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// licenseStatusExtra adds each node's license state to tandem status.
func licenseStatusExtra(ctx context.Context, nc *nats.Conn, ps *api.PairStatus) {
	replies, err := gatherLicense[api.LicenseStatusReply](ctx, nc, ps.Pair, api.VerbLicenseStatus,
		api.LicenseStatusRequest{Request: api.Request{V: api.Version, Pair: ps.Pair}}, time.Second)
	if err != nil {
		return
	}
	for _, r := range replies {
		attach(ps, r.State.Node, func(n *api.NodeStatus) { n.License = r.State })
	}
}

func licenseStatusLines(out io.Writer, ps api.PairStatus) {
	for _, n := range ps.Nodes {
		s, ok := n.License.(api.LicenseState)
		if !ok {
			continue
		}
		fmt.Fprintf(out, "license %s: %s — %s%s\n", n.Node, s.Status, s.Reason, graceNote(s))
	}
}
