package storefake

import (
	"context"
	"maps"
	"slices"

	"github.com/tandem-ha/tandem/services/replicator/internal/conflict"
	"github.com/tandem-ha/tandem/services/replicator/internal/store"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// Snapshot implements store.Reconciler: a copy of the state under path.
func (s *Store) Snapshot(_ context.Context, path string) (store.Snapshot, error) {
	s.mu.Lock()
	c := s.st.clone()
	s.mu.Unlock()
	s.files.mu.Lock()
	s.files.snaps[path] = c
	s.files.mu.Unlock()
	return store.Snapshot{DB: c.id, Log: c.logHigh}, nil
}

// Restore implements store.Reconciler the way the SQLite store does: row
// by row by version, the snapshot's rows taken as changes from the master;
// rows the snapshot lacks or has older are kept and queued, concurrent ones
// go the master's way with the loser recorded and queued. The old log is
// dropped; the database gets a new id whose batches start after its end.
func (s *Store) Restore(_ context.Context, path, source string, stream uint64) (store.Reconciled, error) {
	s.files.mu.Lock()
	snap := s.files.snaps[path]
	s.files.mu.Unlock()
	if snap == nil {
		return store.Reconciled{}, ErrNoSnapshot
	}
	rec := store.Reconciled{Snapshot: store.Snapshot{DB: snap.id, Log: snap.logHigh}}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st.clone()
	st.log = nil
	var queue []wire.Change
	tables := slices.Sorted(maps.Keys(merge(snap.rows, st.rows)))
	for _, t := range tables {
		if st.rows[t] == nil {
			st.rows[t] = map[string]Row{}
		}
		pks := slices.Sorted(maps.Keys(merge(snap.rows[t], st.rows[t])))
		for _, pk := range pks {
			there, here := snap.rows[t][pk], st.rows[t][pk]
			if there == here {
				continue
			}
			out, v := conflict.Decide(here.Ver, there.Ver, true)
			switch out {
			case conflict.Apply:
				st.rows[t][pk] = there
				rec.Taken++
			case conflict.Stale:
				queue = append(queue, changeOf(t, pk, here))
				rec.Kept++
			case conflict.TakeIncoming:
				st.record(t, pk, there.Op, here, there.Ver, here.Ver)
				rec.Conflicts = append(rec.Conflicts, st.conflicts[len(st.conflicts)-1])
				queue = append(queue, changeOf(t, pk, here))
				there.Ver = v
				st.rows[t][pk] = there
				rec.Taken++
			}
		}
	}
	st.id, st.dbStart = s.ids(), st.logHigh
	st.pos[source] = store.Position{DB: snap.id, Log: snap.logHigh, Stream: stream}
	s.st = st
	for _, c := range queue {
		s.queue(c)
	}
	return rec, nil
}

func changeOf(table, pk string, r Row) wire.Change {
	return wire.Change{Table: table, Op: r.Op, PK: pk, Row: rowJSON(r.Image), M: r.Ver.M, S: r.Ver.S}
}

// merge is the union of two maps' keys (values of a).
func merge[V any](a, b map[string]V) map[string]V {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]V{}
	}
	for k, v := range b {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out
}
