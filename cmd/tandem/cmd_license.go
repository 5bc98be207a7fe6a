package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/pkg/api"
	lic "github.com/tandem-ha/tandem/pkg/license"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func init() {
	commandFactories = append(commandFactories, newLicenseCmd)
}

func newLicenseCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "license keygen|issue|add|list|check",
		Short: "licenses: keygen and issue (vendor side); add, list, check (on a pair)",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
	}
	var kg keygenOptions
	keygen := &cobra.Command{
		Use:   "keygen --private FILE --public FILE",
		Short: "make the vendor's Ed25519 key pair (L1)",
		RunE:  func(c *cobra.Command, _ []string) error { return cmdLicenseKeygen(kg, c.OutOrStdout()) },
	}
	keygen.Flags().StringVar(&kg.priv, "private", "", "file to write the vendor's private key to (keep it secret)")
	keygen.Flags().StringVar(&kg.pub, "public", "", "file to write the public key to (license.public_key of every node)")

	var is issueOptions
	issue := &cobra.Command{
		Use:   "issue --key FILE --customer NAME --features a,b --seats N --expires YYYY-MM-DD",
		Short: "sign a license with the vendor's private key and print it",
		RunE:  func(c *cobra.Command, _ []string) error { return cmdLicenseIssue(is, c.OutOrStdout()) },
	}
	f := issue.Flags()
	f.StringVar(&is.key, "key", "", "the vendor's private key file")
	f.StringVar(&is.customer, "customer", "", "customer name")
	f.StringVar(&is.product, "product", "tandem", "product")
	f.StringSliceVar(&is.features, "features", nil, "licensed features, comma separated")
	f.IntVar(&is.seats, "seats", 1, "seats")
	f.StringVar(&is.expires, "expires", "", "last valid day, YYYY-MM-DD (UTC)")
	f.StringVar(&is.id, "id", "", "license id (default: a new unique id)")
	f.StringVar(&is.pair, "pair", "", "bind the license to this pair (a node of another pair refuses it)")

	var ap pairFlags
	add := &cobra.Command{
		Use:   "add FILE --pair P",
		Short: "add a license on the master; it is replicated to the standby (L2, L3)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return cmdLicenseAdd(c.Context(), ap, args[0], c.OutOrStdout())
		},
	}
	ap.register(add.Flags(), a, 3*time.Second)

	var lp pairFlags
	list := &cobra.Command{
		Use:   "list --pair P",
		Short: "each node's licenses and license state",
		RunE:  func(c *cobra.Command, _ []string) error { return cmdLicenseList(c.Context(), lp, c.OutOrStdout()) },
	}
	lp.register(list.Flags(), a, 3*time.Second)

	var cp pairFlags
	var seat string
	check := &cobra.Command{
		Use:   "check FEATURE --pair P",
		Short: "is FEATURE licensed on each node, and why not (L5)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return cmdLicenseCheck(c.Context(), cp, args[0], seat, c.OutOrStdout())
		},
	}
	cp.register(check.Flags(), a, 3*time.Second)
	check.Flags().StringVar(&seat, "seat", "", "hold one of the license's seats for this client name (10 min after its last check)")
	c.AddCommand(keygen, issue, add, list, check)
	return c
}

type keygenOptions struct{ priv, pub string }

type issueOptions struct {
	key, customer, product, expires, id string
	pair                                string
	features                            []string
	seats                               int
}

func cmdLicenseKeygen(o keygenOptions, out io.Writer) error {
	privPath, pubPath := &o.priv, &o.pub
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

func cmdLicenseIssue(o issueOptions, out io.Writer) error {
	key, customer, product, expires, id := &o.key, &o.customer, &o.product, &o.expires, &o.id
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
	for _, f := range o.features {
		if f = strings.TrimSpace(f); f != "" {
			feats = append(feats, f)
		}
	}
	s, err := lic.Sign(priv, lic.Payload{V: lic.Version, ID: *id, Customer: *customer, Product: *product,
		Features: feats, Seats: o.seats, Issued: time.Now(), Expires: *expires, Pair: o.pair})
	if err != nil {
		return err
	}
	_, err = out.Write(s.Armor())
	return err
}

func cmdLicenseAdd(ctx context.Context, p pairFlags, file string, out io.Writer) error {
	text, err := readLimited(file, lic.MaxArmoredSize)
	if err != nil {
		return err
	}
	nc, _, node, err := p.openTarget(ctx, "license add")
	if err != nil {
		return err
	}
	defer nc.Close()
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

func cmdLicenseList(ctx context.Context, p pairFlags, out io.Writer) error {
	nc, err := p.dial("license list")
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

func cmdLicenseCheck(ctx context.Context, p pairFlags, feature, seat string, out io.Writer) error {
	pos := []string{feature}
	nc, err := p.dial("license check")
	if err != nil {
		return err
	}
	defer nc.Close()
	replies, err := gatherLicense[api.LicenseCheckReply](ctx, nc, p.pair, api.VerbLicenseCheck,
		api.LicenseCheckRequest{Request: api.Request{V: api.Version, Pair: p.pair}, Feature: pos[0], Seat: seat}, p.timeout)
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

func licenseStatusLines(out io.Writer, ps api.PairStatus) {
	for _, n := range ps.Nodes {
		s := n.License
		if s == nil {
			if anyNode(ps, func(n api.NodeStatus) bool { return n.License != nil }) {
				fmt.Fprintf(out, "license %s: %s\n", nodeName(n), noAnswer(n))
			}
			continue
		}
		fmt.Fprintf(out, "license %s: %s — %s%s\n", n.Node, s.Status, s.Reason, graceNote(*s))
	}
}
