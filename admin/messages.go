package admin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gatemq/boltstore"
	"gatemq/broker/packet"
	"gatemq/internal/topic"
	"gatemq/session"
)

// Archive is what the API needs of the message archive;
// *boltstore.Archive implements it.
type Archive interface {
	List(q boltstore.ArchiveQuery) (boltstore.ArchivePage, error)
	Get(id uint64) (boltstore.ArchiveRecord, error)
	Stats() boltstore.ArchiveStats
	Files(prefix string) []boltstore.ExportFile
}

var _ Archive = (*boltstore.Archive)(nil)

// Limits of a page of GET /api/v1/messages.
const (
	DefaultMessageLimit = 50
	MaxMessageLimit     = 1000
)

// Message is an archived message, in GET /api/v1/messages and
// GET /api/v1/messages/{id}.
type Message struct {
	ID           string             `json:"id"`   // decimal: a uint64 does not fit a JSON number
	Time         time.Time          `json:"time"` // when the broker received it
	Topic        string             `json:"topic"`
	From         string             `json:"from"` // the publisher's client ID; "" for the broker's own
	QoS          byte               `json:"qos"`
	Retain       bool               `json:"retain"`
	Rule         string             `json:"rule"` // the [[archive]] topic it is kept under
	PayloadBytes int                `json:"payload_bytes"`
	Payload      []byte             `json:"payload"` // base64 in JSON
	Properties   *MessageProperties `json:"properties,omitempty"`
}

// MessageProperties are the v5 properties a message was published with.
type MessageProperties struct {
	PayloadFormat   *byte          `json:"payload_format,omitempty"`
	MessageExpiry   *uint32        `json:"message_expiry_interval,omitempty"` // seconds, as published
	Expires         *time.Time     `json:"expires,omitempty"`
	ContentType     string         `json:"content_type,omitempty"`
	ResponseTopic   string         `json:"response_topic,omitempty"`
	CorrelationData []byte         `json:"correlation_data,omitempty"` // base64 in JSON
	UserProperties  []UserProperty `json:"user_properties,omitempty"`
}

// UserProperty is one v5 User Property.
type UserProperty struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// MessagePage is the answer of GET /api/v1/messages.
type MessagePage struct {
	Messages []Message `json:"messages"`
	// Next is the "after" of the next page; empty when there is none.
	Next string `json:"next,omitempty"`
	// Corrupt counts records skipped because they failed their checksum.
	Corrupt int `json:"corrupt,omitempty"`
}

// NewMessage decodes an archived record.
func NewMessage(r boltstore.ArchiveRecord) (Message, error) {
	m, err := session.DecodeMessage(r.Topic, r.Meta, r.Payload)
	if err != nil {
		return Message{}, fmt.Errorf("archived message %d: %w", r.ID, err)
	}
	out := Message{ID: strconv.FormatUint(r.ID, 10), Time: r.Time().UTC(), Topic: r.Topic, From: m.From, QoS: m.QoS,
		Retain: m.Retain, Rule: r.Rule, PayloadBytes: len(r.Payload), Payload: r.Payload}
	if out.Payload == nil {
		out.Payload = []byte{}
	}
	out.Properties = newMessageProperties(m.Properties())
	if m.Expires != 0 {
		if out.Properties == nil {
			out.Properties = &MessageProperties{}
		}
		secs := uint32(max((m.Expires-int64(r.ID)+int64(time.Second)/2)/int64(time.Second), 0))
		exp := time.Unix(0, m.Expires).UTC()
		out.Properties.MessageExpiry, out.Properties.Expires = &secs, &exp
	}
	return out, nil
}

// newMessageProperties converts a message's v5 properties; nil when it
// has none of them.
func newMessageProperties(p packet.Properties) *MessageProperties {
	mp := MessageProperties{ContentType: p.ContentType, ResponseTopic: p.ResponseTopic, CorrelationData: p.CorrelationData}
	if p.Present.Has(packet.PropPayloadFormat) {
		f := p.PayloadFormat
		mp.PayloadFormat = &f
	}
	for _, u := range p.User {
		mp.UserProperties = append(mp.UserProperties, UserProperty{u.Key, u.Value})
	}
	if mp.PayloadFormat == nil && mp.ContentType == "" && mp.ResponseTopic == "" && mp.CorrelationData == nil && mp.UserProperties == nil {
		return nil
	}
	return &mp
}

// ParseMessageQuery reads the parameters of GET /api/v1/messages:
//
//	topic  a topic, or a filter with + and # (required)
//	from   RFC 3339 time, included (default: the oldest kept)
//	to     RFC 3339 time, excluded (default: now and on)
//	limit  messages per page, 1 to 1000 (default 50)
//	after  the "next" of the previous page
//	order  "newest" (default) or "oldest"
//
// A filter's query asks every topic it scans; a topic's goes through
// the topic index.
func ParseMessageQuery(v url.Values) (boltstore.ArchiveQuery, error) {
	var q boltstore.ArchiveQuery
	name := v.Get("topic")
	if name == "" {
		return q, errors.New("topic is required")
	}
	if strings.ContainsAny(name, "+#") {
		if err := packet.ValidTopicFilter(name); err != nil || strings.HasPrefix(name, "$share/") {
			return q, fmt.Errorf("invalid topic filter %q", name)
		}
		q.Match = func(t string) bool { return topic.Match(name, t) }
	} else if err := packet.ValidTopicName(name); err != nil {
		return q, fmt.Errorf("invalid topic %q", name)
	}
	q.Topic = name
	for _, b := range []struct {
		name string
		dst  *uint64
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := v.Get(b.name); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil || t.UnixNano() <= 0 {
				return q, fmt.Errorf("%s: want an RFC 3339 time such as 2026-03-01T12:00:00Z, got %q", b.name, s)
			}
			*b.dst = uint64(t.UnixNano())
		}
	}
	q.Limit = DefaultMessageLimit
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxMessageLimit {
			return q, fmt.Errorf("limit: want 1 to %d, got %q", MaxMessageLimit, s)
		}
		q.Limit = n
	}
	if s := v.Get("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return q, fmt.Errorf("after: want a message ID, got %q", s)
		}
		q.After = n
	}
	switch v.Get("order") {
	case "", "newest":
		q.Newest = true
	case "oldest":
	default:
		return q, fmt.Errorf("order: want newest or oldest, got %q", v.Get("order"))
	}
	return q, nil
}

// ListMessages runs a query on the archive: one page. The API and the
// command line (reading a stopped broker's data directory) share it.
func ListMessages(a Archive, q boltstore.ArchiveQuery) (MessagePage, error) {
	p, err := a.List(q)
	if err != nil {
		return MessagePage{}, err
	}
	out := MessagePage{Messages: make([]Message, 0, len(p.Records)), Corrupt: p.Corrupt}
	for _, r := range p.Records {
		m, err := NewMessage(r)
		if err != nil {
			out.Corrupt++ // its checksum held, but the broker cannot read it
			continue
		}
		out.Messages = append(out.Messages, m)
	}
	if p.Next != 0 {
		out.Next = strconv.FormatUint(p.Next, 10)
	}
	return out, nil
}

// GetMessage returns one archived message by its ID (decimal), or an
// error wrapping boltstore.ErrNotFound or boltstore.ErrCorrupt.
func GetMessage(a Archive, id string) (Message, error) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || n == 0 {
		return Message{}, fmt.Errorf("invalid message ID %q: %w", id, boltstore.ErrNotFound)
	}
	r, err := a.Get(n)
	if err != nil {
		return Message{}, err
	}
	return NewMessage(r)
}

const noArchive = "no message archive: the configuration has no [[archive]] rule"

func (s *Server) messages(w http.ResponseWriter, r *http.Request) {
	if s.opts.Archive == nil {
		writeError(w, http.StatusNotFound, noArchive)
		return
	}
	q, err := ParseMessageQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	page, err := ListMessages(s.opts.Archive, q)
	if err != nil {
		s.log.Error("list archived messages", logErr, err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) message(w http.ResponseWriter, r *http.Request) {
	if s.opts.Archive == nil {
		writeError(w, http.StatusNotFound, noArchive)
		return
	}
	m, err := GetMessage(s.opts.Archive, r.PathValue("id"))
	switch {
	case errors.Is(err, boltstore.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, m)
	}
}

// writeArchive writes the message archive's families.
func writeArchive(w io.Writer, a Archive) {
	st := a.Stats()
	f := func(v uint64) float64 { return float64(v) }
	writeFamily(w, "gatemq_archive_messages_total", "counter", "Messages committed to the message archive.", one(f(st.Written)))
	writeFamily(w, "gatemq_archive_messages_dropped_total", "counter", "Archived messages dropped, by reason.",
		sample{`{reason="retention"}`, f(st.Expired)}, sample{`{reason="max_bytes"}`, f(st.Capped)},
		sample{`{reason="io_error"}`, f(st.Failed)})
	writeFamily(w, "gatemq_archive_corrupt_records_total", "counter", "Archive records that failed their checksum on read.", one(f(st.CorruptRecords)))
	writeFamily(w, "gatemq_archive_commits_total", "counter", "Write batches of the message archive.", one(f(st.Commits)))
	writeFamily(w, "gatemq_archive_size_bytes", "gauge", "Size of the message archive's files.", one(float64(max(st.Bytes, 0))))
}
