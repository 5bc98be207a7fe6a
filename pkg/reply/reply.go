// Package reply is the shape of every admin reply (SPEC §8): {"ok":true,…}
// or {"ok":false,"error":{"code":"…","message":"…"}}, and the catalogue of
// error codes callers branch on. It also holds the request helper the CLI
// and tests use.
package reply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/event"
)

// MaxSize is the largest admin request or reply accepted.
const MaxSize = 256 << 10

// Error codes. They are part of the public contract.
const (
	CodeBadRequest   = "bad_request"   // malformed, oversized or invalid request
	CodeWrongPair    = "wrong_pair"    // the request names another pair
	CodeNotMaster    = "not_master"    // the command is accepted only on the master; Node names it
	CodeInvalidState = "invalid_state" // the command does not apply to the pair's present state
	CodeBusy         = "busy"          // another command is in progress
	CodeUnknownNode  = "unknown_node"  // the request names a node the pair does not have
	CodeTimeout      = "timeout"       // the node did not answer in time
	CodeUnavailable  = "unavailable"   // no node of the pair answered
	CodeInternal     = "internal"      // the node failed; the message says how
)

// Error is a refusal. Node, where set, names the node to ask instead.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Node    string `json:"node,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf makes an *Error.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// OK encodes a successful reply: the fields of v (a struct or map, or nil)
// with "ok":true.
func OK(v any) []byte {
	fields := map[string]json.RawMessage{}
	if v != nil {
		b, err := json.Marshal(v)
		if err == nil {
			err = json.Unmarshal(b, &fields)
		}
		if err != nil {
			return Fail(&Error{Code: CodeInternal, Message: "encode reply: " + err.Error()})
		}
	}
	fields["ok"] = json.RawMessage("true")
	b, _ := json.Marshal(fields)
	return b
}

// Fail encodes a refusal. A plain error becomes CodeInternal.
func Fail(err error) []byte {
	var re *Error
	if !errors.As(err, &re) {
		re = &Error{Code: CodeInternal, Message: err.Error()}
	}
	b, _ := json.Marshal(struct {
		OK    bool   `json:"ok"`
		Error *Error `json:"error"`
	}{false, re})
	return b
}

// Decode reads a reply into v. A refusal comes back as an *Error.
func Decode(b []byte, v any) error {
	var head struct {
		OK    *bool  `json:"ok"`
		Error *Error `json:"error"`
	}
	if len(b) > MaxSize {
		return fmt.Errorf("reply of %d bytes: %w", len(b), event.ErrTooLarge)
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return fmt.Errorf("decode reply: %w", err)
	}
	if head.OK == nil {
		return errors.New("decode reply: no \"ok\" field")
	}
	if !*head.OK {
		if head.Error == nil {
			return &Error{Code: CodeInternal, Message: "refused without a reason"}
		}
		return head.Error
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(b, v)
}

// Request sends req (marshalled as JSON) to subj and decodes the reply into
// resp.
func Request(ctx context.Context, nc *nats.Conn, subj string, req, resp any) error {
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	msg, err := nc.RequestWithContext(ctx, subj, data)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return &Error{Code: CodeUnavailable, Message: "no node answers on " + subj}
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			return &Error{Code: CodeTimeout, Message: "no answer on " + subj}
		}
		return err
	}
	return Decode(msg.Data, resp)
}

// Gather sends req to subj and collects every reply until want replies have
// come or wait has passed. It is how a command reaches every node of a pair.
func Gather(ctx context.Context, nc *nats.Conn, subj string, req any, want int, wait time.Duration) ([][]byte, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe() //nolint:errcheck
	if err := nc.PublishRequest(subj, inbox, data); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var out [][]byte
	for len(out) < want {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			break
		}
		if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
			continue
		}
		out = append(out, m.Data)
	}
	return out, nil
}
