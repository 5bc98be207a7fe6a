package storefake

import (
	"context"
	"errors"
	"fmt"

	"github.com/tandem-ha/tandem/services/replicator/internal/conflict"
	"github.com/tandem-ha/tandem/services/replicator/internal/store"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// apply is a group being applied: it works on a copy of the state and
// swaps it in at Commit (all or nothing, as a transaction).
type apply struct {
	s          *Store
	st         *state
	source     string
	fromMaster bool
	res        store.Result
	done       bool
}

// Begin implements store.Applier.
func (s *Store) Begin(_ context.Context, source string, fromMaster bool) (store.Apply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &apply{s: s, st: s.st.clone(), source: source, fromMaster: fromMaster}, nil
}

// Apply implements store.Apply. Pieces of a large row are not supported.
func (a *apply) Apply(_ context.Context, b *wire.Batch, after uint64) error {
	if a.done {
		return errors.New("storefake: apply after the end")
	}
	for i := range b.Changes {
		c := &b.Changes[i]
		if c.Seq <= after {
			a.res.Skipped++
			continue
		}
		if c.Pieces > 0 || (c.Op != wire.OpInsert && c.Op != wire.OpUpdate && c.Op != wire.OpDelete) {
			return fmt.Errorf("%w: storefake applies row changes only, not op %q or pieces", wire.ErrInvalid, c.Op)
		}
		a.change(c)
		a.res.LastTS = max(a.res.LastTS, c.TS)
	}
	return nil
}

// change applies one change by conflict.Decide, as the SQLite store does.
func (a *apply) change(c *wire.Change) {
	rs := a.st.rows[c.Table]
	if rs == nil {
		rs = map[string]Row{}
		a.st.rows[c.Table] = rs
	}
	local := rs[c.PK]
	in := conflict.Version{M: c.M, S: c.S}
	out, v := conflict.Decide(local.Ver, in, a.fromMaster)
	incoming := Row{Image: string(c.Row), Ver: v, Op: c.Op}
	switch out {
	case conflict.Stale:
		a.res.Stale++
		return
	case conflict.TakeIncoming:
		a.st.record(c.Table, c.PK, c.Op, local, in, local.Ver)
	case conflict.KeepLocal:
		a.st.record(c.Table, c.PK, local.Op, Row{Image: string(c.Row), Op: c.Op, Ver: in}, local.Ver, in)
		local.Ver = v
		rs[c.PK] = local
		a.res.Conflicts = append(a.res.Conflicts, a.st.conflicts[len(a.st.conflicts)-1])
		return
	}
	if out == conflict.TakeIncoming {
		a.res.Conflicts = append(a.res.Conflicts, a.st.conflicts[len(a.st.conflicts)-1])
	}
	rs[c.PK] = incoming
	a.res.Applied++
}

// record keeps a losing version (always the standby's).
func (s *state) record(table, pk, winOp string, loser Row, win, lose conflict.Version) {
	img := loser.Image
	if loser.Op == wire.OpDelete {
		img = ""
	}
	s.conflicts = append(s.conflicts, store.Conflict{Table: table, PK: pk, Kind: opNames[winOp] + "/" + opNames[loser.Op],
		Winner: string(store.Master), Loser: string(store.Standby), LoserOp: loser.Op, LoserRow: img,
		LoserVer: lose, WinnerVer: win})
}

// Commit implements store.Apply.
func (a *apply) Commit(_ context.Context, p store.Position) (store.Result, error) {
	if a.done {
		return store.Result{}, errors.New("storefake: commit after the end")
	}
	a.done = true
	a.st.pos[a.source] = p
	a.s.mu.Lock()
	a.s.st = a.st
	a.s.mu.Unlock()
	return a.res, nil
}

// Rollback implements store.Apply.
func (a *apply) Rollback() error {
	a.done = true
	return nil
}

var opNames = map[string]string{wire.OpInsert: "insert", wire.OpUpdate: "update", wire.OpDelete: "delete"}
