package api

import (
	"fmt"
	"testing"

	"github.com/tandem-ha/tandem/pkg/event"
)

// A page of a notifier's sessions is taken only as its requester asked for
// it: valid names in increasing order after the cursor, plausible epochs
// and switch counts, within the page limit.
func TestNotifierSessionsReplyValidate(t *testing.T) {
	k := func(s string, epoch uint64) KnownSession { return KnownSession{Session: s, Epoch: epoch} }
	many := make([]KnownSession, MaxSessionsPage+1)
	for i := range many {
		many[i] = k(fmt.Sprintf("s%08d", i), 1)
	}
	cases := []struct {
		name  string
		after string
		r     NotifierSessionsReply
		ok    bool
	}{
		{"empty, last", "", NotifierSessionsReply{}, true},
		{"in order", "", NotifierSessionsReply{Sessions: []KnownSession{k("a", 0), k("b", 3), k("c", 2)}, More: true}, true},
		{"after the cursor", "b", NotifierSessionsReply{Sessions: []KnownSession{k("c", 1)}}, true},
		{"a full page", "", NotifierSessionsReply{Sessions: many[:MaxSessionsPage], More: true}, true},
		{"too many", "", NotifierSessionsReply{Sessions: many}, false},
		{"not after the cursor", "b", NotifierSessionsReply{Sessions: []KnownSession{k("b", 1)}}, false},
		{"out of order", "", NotifierSessionsReply{Sessions: []KnownSession{k("b", 1), k("a", 1)}}, false},
		{"twice", "", NotifierSessionsReply{Sessions: []KnownSession{k("a", 1), k("a", 1)}}, false},
		{"bad name", "", NotifierSessionsReply{Sessions: []KnownSession{k("a.b", 1)}}, false},
		{"epoch beyond", "", NotifierSessionsReply{Sessions: []KnownSession{k("a", event.MaxEpoch+1)}}, false},
		{"negative switches", "", NotifierSessionsReply{Sessions: []KnownSession{{Session: "a", Epoch: 1, Switched: -1}}}, false},
		{"too many switches", "", NotifierSessionsReply{Sessions: []KnownSession{{Session: "a", Epoch: 1, Switched: MaxAckSwitches + 1}}}, false},
		{"more after nothing", "", NotifierSessionsReply{More: true}, false},
	}
	for _, c := range cases {
		if err := c.r.Validate(c.after); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
}
