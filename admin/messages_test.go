package admin

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"gatemq/boltstore"
	"gatemq/internal/topic"
	"gatemq/session"
)

// The messages endpoints on a real archive: a page, the next one, one
// message, and the errors.
func TestServer_Messages(t *testing.T) {
	a, err := boltstore.OpenArchive(t.TempDir(), &boltstore.ArchiveOptions{
		Rules: []boltstore.ArchiveRule{{Filter: "s/#"}}, Match: topic.Match})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i, tp := range []string{"s/1", "s/2", "s/1", "s/1"} {
		m := &session.Message{Topic: tp, Payload: []byte{'0' + byte(i)}, QoS: 1, From: "dev"}
		a.Add(a.Rule(tp), tp, session.EncodeMeta(m), m.Payload, nil)
	}
	if err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	_, c, _ := startUnix(t, Options{Broker: &fakeBroker{}, Archive: a})
	list := func(query string) MessagePage {
		t.Helper()
		code, body := do(t, c, "GET", "http://admin/api/v1/messages?"+query, nil)
		var p MessagePage
		if err := json.Unmarshal([]byte(body), &p); code != 200 || err != nil {
			t.Fatalf("%s: %d %s", query, code, body)
		}
		return p
	}
	p := list("topic=s/1&limit=2")
	if len(p.Messages) != 2 || string(p.Messages[0].Payload) != "3" || string(p.Messages[1].Payload) != "2" || p.Next == "" {
		t.Fatalf("first page newest first: %+v", p)
	}
	p = list("topic=s/1&limit=2&after=" + p.Next)
	if len(p.Messages) != 1 || string(p.Messages[0].Payload) != "0" || p.Next != "" {
		t.Fatalf("second page: %+v", p)
	}
	p = list(url.Values{"topic": {"s/+"}, "order": {"oldest"}}.Encode())
	if len(p.Messages) != 4 || string(p.Messages[1].Payload) != "1" || p.Messages[1].From != "dev" || p.Messages[1].QoS != 1 {
		t.Fatalf("filter: %+v", p)
	}
	id := p.Messages[1].ID
	code, body := do(t, c, "GET", "http://admin/api/v1/messages/"+id, nil)
	var m Message
	if err := json.Unmarshal([]byte(body), &m); code != 200 || err != nil || m.ID != id || m.Topic != "s/2" || m.Rule != "s/#" {
		t.Fatalf("get %s: %d %s", id, code, body)
	}
	for _, tc := range []struct {
		path     string
		code     int
		contains string
	}{
		{"/api/v1/messages", 400, "topic is required"},
		{"/api/v1/messages?topic=s/%23/x", 400, "invalid topic filter"},
		{"/api/v1/messages?topic=s/1&limit=0", 400, "limit"},
		{"/api/v1/messages?topic=s/1&limit=1001", 400, "limit"},
		{"/api/v1/messages?topic=s/1&from=yesterday", 400, "from"},
		{"/api/v1/messages?topic=s/1&after=x", 400, "after"},
		{"/api/v1/messages?topic=s/1&order=up", 400, "order"},
		{"/api/v1/messages/1", 404, "not found"},
		{"/api/v1/messages/abc", 404, "not found"},
	} {
		if code, body := do(t, c, "GET", "http://admin"+tc.path, nil); code != tc.code || !strings.Contains(body, tc.contains) {
			t.Errorf("%s = %d %s, want %d with %q", tc.path, code, body, tc.code, tc.contains)
		}
	}
	if _, body := do(t, c, "GET", "http://admin/metrics", nil); !strings.Contains(body, "gatemq_archive_messages_total 4\n") {
		t.Errorf("metrics lack the archive's:\n%s", body)
	}

	// Without an archive.
	_, c2, _ := startUnix(t, Options{Broker: &fakeBroker{}})
	if code, body := do(t, c2, "GET", "http://admin/api/v1/messages?topic=s/1", nil); code != 404 || !strings.Contains(body, "no message archive") {
		t.Errorf("no archive: %d %s", code, body)
	}
}
