package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"unicode/utf16"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/agent/plan"
)

// Windows is the driver of a Windows user's printer connections
// (\\print-a\Floor3), run in the user's own session (one agent per session
// on a terminal server). It drives PowerShell's PrintManagement cmdlets
// rather than the Win32 print API: Get-/Set-PrintConfiguration expose the
// per-user printing preferences (duplex, colour, paper) that the API only
// offers as a driver-specific DEVMODE to copy between two drivers' layouts,
// the scripts are plain text an administrator can read and run by hand
// (ListScript, ApplyScript; golden-tested), and the agent stays pure Go on
// every platform. The price is a PowerShell start per step (about half a
// second), paid once per connection per failover.
//
// Switching a connection (ApplyScript): read the old connection's
// preferences (the last ones read by List when its server no longer
// answers), add the connection on the new server, set the preferences on
// it, make it the default printer if the old one was, then remove the old
// connection. If anything fails before the removal, the new connection (if
// this step added it) is removed again and the old one is left as it was:
// nothing half-done.
type Windows struct {
	PS PowerShell

	mu    sync.Mutex // guards prefs
	prefs map[string]Prefs
}

var _ Driver = (*Windows)(nil)

// PowerShell runs a script and returns its standard output.
type PowerShell interface {
	Run(ctx context.Context, script string) ([]byte, error)
}

// Prefs are the per-user printing preferences the driver carries over, as
// Get-PrintConfiguration names them ("" or nil when unknown).
type Prefs struct {
	Duplex string `json:"duplex"` // DuplexingMode: OneSided, TwoSidedLongEdge, TwoSidedShortEdge
	Color  *bool  `json:"color"`
	Paper  string `json:"paper"` // PaperSize: A4, Letter, …
}

// listed is one connection as ListScript prints it.
type listed struct {
	Name    string `json:"name"`
	Default bool   `json:"default"`
	Prefs
}

// ListScript prints the user's printer connections as a JSON array of
// {name, default, duplex, color, paper}.
const ListScript = `$ErrorActionPreference = 'Stop'
$def = Get-CimInstance -ClassName Win32_Printer -Filter 'Default = TRUE' | Select-Object -First 1 -ExpandProperty Name
$list = @(Get-Printer | Where-Object { $_.Type -eq 'Connection' } | ForEach-Object {
    $o = [ordered]@{ name = $_.Name; default = ($_.Name -eq $def); duplex = ''; color = $null; paper = '' }
    try {
        $c = Get-PrintConfiguration -PrinterName $_.Name
        $o.duplex = [string]$c.DuplexingMode; $o.color = [bool]$c.Color; $o.paper = [string]$c.PaperSize
    } catch { }
    [pscustomobject]$o
})
ConvertTo-Json -InputObject $list -Compress
`

// List returns the user's printer connections and remembers their
// preferences for a later switch.
func (w *Windows) List(ctx context.Context) ([]plan.Connection, error) {
	out, err := w.PS.Run(ctx, ListScript)
	if err != nil {
		return nil, fmt.Errorf("list printer connections: %w", err)
	}
	var ls []listed
	if err := json.Unmarshal(bytes.TrimSpace(out), &ls); err != nil {
		return nil, fmt.Errorf("list printer connections: decode %q: %w", truncateOut(out), err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.prefs == nil {
		w.prefs = map[string]Prefs{}
	}
	conns := make([]plan.Connection, 0, len(ls))
	for _, l := range ls {
		if l.Duplex != "" || l.Color != nil || l.Paper != "" {
			w.prefs[strings.ToLower(l.Name)] = l.Prefs
		}
		conns = append(conns, plan.Connection{ID: l.Name, Address: l.Name, Default: l.Default})
	}
	return conns, nil
}

// Apply switches one connection with ApplyScript.
func (w *Windows) Apply(ctx context.Context, s Step) error {
	if err := checkUNC(s.To); err != nil {
		return err
	}
	w.mu.Lock()
	p := w.prefs[strings.ToLower(s.From)]
	w.mu.Unlock()
	if _, err := w.PS.Run(ctx, ApplyScript(s, p)); err != nil {
		return fmt.Errorf("switch %s to %s: %w", s.From, s.To, err)
	}
	w.mu.Lock()
	if _, ok := w.prefs[strings.ToLower(s.From)]; ok {
		w.prefs[strings.ToLower(s.To)] = p
	}
	w.mu.Unlock()
	return nil
}

// checkUNC accepts \\server\printer only.
func checkUNC(s string) error {
	rest, ok := strings.CutPrefix(s, `\\`)
	server, printer, ok2 := strings.Cut(rest, `\`)
	if !ok || !ok2 || server == "" || printer == "" || strings.ContainsAny(s, "\x00\r\n") {
		return fmt.Errorf("printer connection %q refused: want \\\\server\\printer", s)
	}
	return nil
}

// ApplyScript is the PowerShell script that switches one connection, with
// cached as the preferences to carry when the old connection's cannot be
// read.
func ApplyScript(s Step, cached Prefs) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("$ErrorActionPreference = 'Stop'")
	w("$from = %s", psQuote(s.From))
	w("$to = %s", psQuote(s.To))
	w("# 1. the preferences of the old connection (as last read, if its server does not answer)")
	w("$duplex = %s; $color = %s; $paper = %s", psQuote(cached.Duplex), psBool(cached.Color), psQuote(cached.Paper))
	w("try {")
	w("    $c = Get-PrintConfiguration -PrinterName $from")
	w("    $duplex = [string]$c.DuplexingMode; $color = [bool]$c.Color; $paper = [string]$c.PaperSize")
	w("} catch { }")
	if s.Exists {
		w("# 2. the user is already connected to %s", s.To)
	} else {
		w("# 2. the connection on the new server")
		w("Add-Printer -ConnectionName $to")
	}
	w("try {")
	w("    # 3. the preferences on it")
	w("    if ($duplex) { Set-PrintConfiguration -PrinterName $to -DuplexingMode $duplex }")
	w("    if ($null -ne $color) { Set-PrintConfiguration -PrinterName $to -Color $color }")
	w("    if ($paper) { Set-PrintConfiguration -PrinterName $to -PaperSize $paper }")
	if s.Default {
		w("    # 4. the default printer, as the old connection was")
		w("    $p = Get-CimInstance -ClassName Win32_Printer | Where-Object { $_.Name -eq $to } | Select-Object -First 1")
		w("    $r = Invoke-CimMethod -InputObject $p -MethodName SetDefaultPrinter")
		w("    if ($r.ReturnValue -ne 0) { throw \"SetDefaultPrinter returned $($r.ReturnValue)\" }")
	}
	w("} catch {")
	if s.Exists {
		w("    # the connection was there before: left as it is")
	} else {
		w("    # nothing half-done: the new connection goes, the old one stays")
		w("    Remove-Printer -Name $to -ErrorAction SilentlyContinue")
	}
	w("    throw")
	w("}")
	w("# 5. the old connection (if it cannot be removed now, the switch stands and the next pass removes it)")
	w("try { Remove-Printer -Name $from } catch { Write-Warning \"old connection not removed: $_\" }")
	return b.String()
}

// psQuote is s as a PowerShell single-quoted string (PowerShell also takes
// the typographic single quotes as quotes: each is doubled).
func psQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\'', '\u2018', '\u2019', '\u201a', '\u201b':
			b.WriteRune(r)
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
	return b.String()
}

func psBool(v *bool) string {
	switch {
	case v == nil:
		return "$null"
	case *v:
		return "$true"
	}
	return "$false"
}

// PowerShellExe runs scripts with Windows PowerShell (powershell.exe, which
// has the PrintManagement module) as the user the agent runs as.
type PowerShellExe struct {
	Path string // default "powershell.exe"
}

// Run runs script, passed as -EncodedCommand (UTF-16LE, base64): no
// quoting of the script through a command line.
func (p PowerShellExe) Run(ctx context.Context, script string) ([]byte, error) {
	path := p.Path
	if path == "" {
		path = "powershell.exe"
	}
	cmd := exec.CommandContext(ctx, path, "-NoLogo", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass",
		"-EncodedCommand", encodeCommand(script))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: %s", err, truncateOut(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// encodeCommand is what powershell -EncodedCommand takes.
func encodeCommand(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func truncateOut(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
