package session

import (
	"slices"
	"strings"
	"testing"
)

// The server list as operators write it: several per entry, blanks,
// repeats and empty entries dropped; a URL that is not a NATS server's is
// refused, naming it and what is wrong.
func TestServerURLs(t *testing.T) {
	ok := []struct {
		in   []string
		want []string
	}{
		{[]string{"nats://a:4222"}, []string{"nats://a:4222"}},
		{[]string{"nats://a:4222, nats://b:4222,"}, []string{"nats://a:4222", "nats://b:4222"}},
		{[]string{"a:4222", " ", "b", "a:4222"}, []string{"a:4222", "b"}},
		{[]string{"tls://a:4443,ws://b:8080,wss://c", "[::1]:4222"}, []string{"tls://a:4443", "ws://b:8080", "wss://c", "[::1]:4222"}},
		{[]string{"nats://user:pw@a:4222"}, []string{"nats://user:pw@a:4222"}},
	}
	for _, c := range ok {
		got, err := ServerURLs(c.in...)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ServerURLs(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	bad := []struct {
		in   []string
		want string
	}{
		{nil, "no server URL given"},
		{[]string{"", " , ,"}, "no server URL given"},
		{[]string{"http://a:4222"}, `server URL "http://a:4222": scheme "http"`},
		{[]string{"nats://a:4222", "nats:/b:4222"}, `server URL "nats:/b:4222"`},
		{[]string{"nats://:4222"}, "no host"},
		{[]string{"nats://a:0"}, `port "0"`},
		{[]string{"nats://a:65536"}, `port "65536"`},
		{[]string{"nats://a b:4222"}, "invalid character"},
	}
	for _, c := range bad {
		got, err := ServerURLs(c.in...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ServerURLs(%q) = %q, %v; want an error with %q", c.in, got, err, c.want)
		}
	}
}
