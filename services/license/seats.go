package license

// Seats (SPEC §9): a license's Seats is how many clients may use it at
// once. A client holds a seat by asking the L5 check with its seat name;
// the seat stays held for SeatHold after its last check, so clients check
// again at least that often. A check without a seat name only answers and
// holds nothing. Seats are counted per node: each node counts the clients
// that ask it (the active node, normally).

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// SeatHold is how long a seat stays held after its client's last check.
const SeatHold = 10 * time.Minute

// maxSeatName bounds a seat name.
const maxSeatName = 128

// seatTable is the seats held per license id.
type seatTable struct {
	mu   sync.Mutex                      // guards held
	held map[string]map[string]time.Time // license id → seat → last check
}

// take holds seat on license id (limit seats) at now: ok stays true with
// why extended, or becomes false with the reason.
func (t *seatTable) take(id string, limit int, seat string, now time.Time, why string) (bool, string) {
	if len(seat) > maxSeatName || strings.ContainsAny(seat, "\x00\n\r") {
		return false, fmt.Sprintf("seat name of %d bytes refused (at most %d, one line)", len(seat), maxSeatName)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.held == nil {
		t.held = map[string]map[string]time.Time{}
	}
	seats := t.held[id]
	if seats == nil {
		seats = map[string]time.Time{}
		t.held[id] = seats
	}
	for s, at := range seats {
		if now.Sub(at) >= SeatHold || at.After(now.Add(SeatHold)) {
			delete(seats, s)
		}
	}
	if _, ok := seats[seat]; !ok && len(seats) >= limit {
		names := make([]string, 0, len(seats))
		for s := range seats {
			names = append(names, s)
		}
		sort.Strings(names)
		return false, fmt.Sprintf("all %d seat(s) of license %s are in use (held by %s); a seat is freed %v after its client's last check",
			limit, id, strings.Join(names, ", "), SeatHold)
	}
	seats[seat] = now
	return true, fmt.Sprintf("%s; seat %d of %d held by %q", why, len(seats), limit, seat)
}

// seatLimit is the seats of license id as run last saw it.
func (s *Service) seatLimit(id string) int {
	for _, e := range s.snap.Load().status.Licenses {
		if e.ID == id {
			return e.Seats
		}
	}
	return 0
}
