package storefake_test

import (
	"testing"

	"github.com/tandem-ha/tandem/services/replicator/internal/store"
	"github.com/tandem-ha/tandem/services/replicator/internal/store/storefake"
	"github.com/tandem-ha/tandem/services/replicator/internal/store/storetest"
)

// The fake keeps the core contract the SQLite store keeps, so that the
// logic's tests over the fake say something about the real store.
func TestFakeCoreContract(t *testing.T) {
	files := storefake.NewFiles()
	storetest.RunCore(t, storetest.CoreHarness{Open: func(t *testing.T, side store.Side) storetest.CoreDB {
		s := storefake.New(storefake.Options{Side: side, Files: files})
		return storetest.CoreDB{Store: s, App: app{s}}
	}})
}

type app struct{ s *storefake.Store }

func (a app) Put(_ *testing.T, key, value string) { a.s.Put("kv", key, value) }
func (a app) Delete(_ *testing.T, key string)     { a.s.Delete("kv", key) }
func (a app) Rows(*testing.T) map[string]string   { return a.s.Rows("kv") }
