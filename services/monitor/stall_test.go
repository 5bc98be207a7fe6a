package monitor

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/services/monitor/internal/epochfile"
	"github.com/tandem-ha/tandem/services/monitor/internal/failover"
)

// The driver's late-timer detection (F12), as a unit: a standby's driver
// without NATS, on a fake clock, woken the way run wakes it (onTimer,
// onQueued). Its own freeze comes as one late wake-up; its peer's freeze as
// on-time wake-ups with no heartbeat. The settings are the fast profile's
// (25 ms / 380 ms), where a freeze of either node is most easily mistaken
// for the other's death.

// driver is a standby's Service reduced to its loop's state, and what its
// machine asked for.
type driver struct {
	t      *testing.T
	s      *Service
	clk    *clock.Fake
	events []failover.Event
	beats  int // heartbeats the machine asked to send
}

func newDriver(t *testing.T) *driver {
	cfg := config.Default()
	cfg.Pair, cfg.Node, cfg.Role, cfg.DataDir = "p", "b", config.Standby, t.TempDir()
	cfg.Heart = config.Profiles[config.ProfileFast]
	cfg.Hosts = map[string]string{"a": "a.test", "b": "b.test"}
	met, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC))
	s := &Service{cfg: cfg, clk: clk, log: zerolog.Nop(), met: met, tick: cfg.Heart.Interval / TicksPerInterval,
		inputs: make(chan input, 16), checkSince: map[string]time.Time{}}
	if s.m, err = failover.New(s.machineConfig(epochfile.Epochs{})); err != nil {
		t.Fatal(err)
	}
	s.lastTick = clk.Now()
	d := &driver{t: t, s: s, clk: clk}
	d.collect()
	return d
}

// collect takes what the machine asked for, as carryOut would.
func (d *driver) collect() {
	for d.s.m.HasReady() {
		rd := d.s.m.Ready()
		d.events = append(d.events, rd.Events...)
		if rd.Heartbeat {
			d.beats++
		}
		d.s.m.Advance()
	}
}

// wake is run's timer firing late after the due tick (0: on time).
func (d *driver) wake(late time.Duration) time.Time {
	quiet := d.s.m.Quiet()
	now := d.s.lastTick.Add(time.Duration(quiet+1) * d.s.tick).Add(late)
	d.clk.Set(now)
	d.s.onTimer(now, quiet)
	d.collect()
	return now
}

// peerBeat is a heartbeat of the active master a, as run takes it from its
// queue now.
func (d *driver) peerBeat() {
	d.s.onQueued(d.clk.Now(), d.s.m.Quiet(), d.activeA())
	d.collect()
}

func (d *driver) activeA() input {
	return input{in: failover.Heartbeat{From: "a", Role: config.Master, State: failover.Active, Epoch: 2}, at: d.clk.Now()}
}

// steady runs the standby on time for dur, hearing a every interval; it
// returns with b passive beside a.
func (d *driver) steady(dur time.Duration) {
	end := d.clk.Now().Add(dur)
	next := d.clk.Now()
	for d.clk.Now().Before(end) {
		if !d.clk.Now().Before(next) {
			d.peerBeat()
			next = next.Add(d.s.cfg.Heart.Interval)
		}
		d.wake(0)
	}
	if st := d.s.m.Status(); st.State != failover.Passive || !st.PeerHeard {
		d.t.Fatalf("after %v of heartbeats: %s, peer heard %v; want passive beside a", dur, st.State, st.PeerHeard)
	}
}

// silentUntilActive wakes on time, hearing nothing, until b activates
// (bounded), and returns when.
func (d *driver) silentUntilActive(limit time.Duration) time.Time {
	end := d.clk.Now().Add(limit)
	for d.clk.Now().Before(end) {
		now := d.wake(0)
		if d.s.m.State() == failover.Active {
			return now
		}
	}
	d.t.Fatalf("b still %s after %v of silence", d.s.m.State(), limit)
	return time.Time{}
}

func (d *driver) count(typ string) int {
	n := 0
	for _, e := range d.events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func (d *driver) stalls() float64 {
	var m dto.Metric
	if err := d.s.met.stalls.Write(&m); err != nil {
		d.t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestFrozenPeer: on-time ticks and no heartbeat is the peer's silence: b
// activates once it exceeds the timeout, and counts no stall.
func TestFrozenPeer(t *testing.T) {
	d := newDriver(t)
	d.steady(time.Second)
	lastHeard := d.s.lastHeard
	at := d.silentUntilActive(5 * time.Second)
	timeout := d.s.cfg.Heart.Timeout
	if took := at.Sub(lastHeard); took < timeout || took > timeout+2*d.s.tick {
		t.Errorf("activated %v after a's last heartbeat, want just past the timeout %v", took, timeout)
	}
	if d.stalls() != 0 || d.count(event.NodeStalled) != 0 {
		t.Errorf("a frozen peer was taken for a stall of b: %v stalls", d.stalls())
	}
}

// TestFrozenSelf: b's own timer fires a second late (b was frozen, a kept
// sending): b does not count that second as a's silence (F12). It counts a
// stall, says so, sends a heartbeat at once, and takes the heartbeat that
// queued up during its freeze before its next decision: it stays passive.
func TestFrozenSelf(t *testing.T) {
	d := newDriver(t)
	d.steady(time.Second)
	beats := d.beats
	d.s.inputs <- d.activeA() // arrived during the freeze
	d.wake(time.Second)
	if st := d.s.m.Status(); st.State != failover.Passive || !st.PeerHeard || st.PeerSilence > 1 {
		t.Fatalf("after its own freeze b is %s (peer heard %v, silence %d ticks), want passive, a heard a tick ago", st.State, st.PeerHeard, st.PeerSilence)
	}
	if d.stalls() != 1 || d.count(event.NodeStalled) != 1 {
		t.Errorf("stalls %v, %s events %d; want 1 and 1", d.stalls(), event.NodeStalled, d.count(event.NodeStalled))
	}
	if d.beats == beats {
		t.Error("b sent no heartbeat on its resumption")
	}
	d.steady(time.Second)
	if n := d.count(event.NodeActivated) + d.count(event.PeerLost); n != 0 {
		t.Errorf("%d activations or peer losses after b's own freeze", n)
	}
}

// TestFrozenSelfPeerGone: b wakes a second late and nothing of a has queued
// up: b does not count its own pause as a's silence. It re-checks for at
// least one interval, and takes over once the silence it measured while
// running exceeds the timeout.
func TestFrozenSelfPeerGone(t *testing.T) {
	d := newDriver(t)
	d.steady(time.Second)
	resumed := d.wake(time.Second)
	if d.s.m.State() != failover.Passive || d.stalls() != 1 {
		t.Fatalf("on resumption b is %s with %v stalls; want passive and 1", d.s.m.State(), d.stalls())
	}
	at := d.silentUntilActive(5 * time.Second)
	if took, iv, to := at.Sub(resumed), d.s.cfg.Heart.Interval, d.s.cfg.Heart.Timeout; took < iv || took > to {
		t.Errorf("b took over %v after it resumed, want between one interval (%v) and the timeout (%v)", took, iv, to)
	}
}

// TestFrozenSelfInput: b's first wake-up after its freeze is an input, not
// its timer: the stall is counted before the input is applied.
func TestFrozenSelfInput(t *testing.T) {
	d := newDriver(t)
	d.steady(time.Second)
	d.clk.Advance(time.Second)
	d.peerBeat()
	if d.stalls() != 1 || d.s.m.State() != failover.Passive {
		t.Errorf("stalls %v, state %s; want 1, passive", d.stalls(), d.s.m.State())
	}
}

// TestLateWithinThreshold: a timer a little late (less than the threshold,
// a quarter of an interval) is no stall.
func TestLateWithinThreshold(t *testing.T) {
	d := newDriver(t)
	d.steady(time.Second)
	d.wake(d.s.stallThreshold() - d.s.tick)
	d.wake(0)
	if d.stalls() != 0 {
		t.Errorf("a timer %v late counted as a stall", d.s.stallThreshold()-d.s.tick)
	}
	d.wake(d.s.stallThreshold() + d.s.tick)
	if d.stalls() != 1 {
		t.Errorf("a timer %v late not counted as a stall", d.s.stallThreshold()+d.s.tick)
	}
}
