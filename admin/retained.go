package admin

import (
	"errors"
	"net/http"
	"time"
	"unicode"
	"unicode/utf8"

	"gatemq/broker"
)

// RetainedEditor is what the retained-message endpoints need beyond the
// Broker's list; *broker.Server implements it. DeleteRetained blocks
// until the store has committed the deletion.
type RetainedEditor interface {
	RetainedMatching(filter string) ([]broker.RetainedInfo, error)
	RetainedMessage(topic string) (broker.RetainedMessage, bool)
	DeleteRetained(topic string) (bool, error)
}

var _ RetainedEditor = (*broker.Server)(nil)

// RetainedDetail is one retained message with its payload, in GET
// /api/v1/retained/{topic}.
type RetainedDetail struct {
	Retained
	// Properties are the v5 properties forwarded with the message;
	// absent when it has none.
	Properties *MessageProperties `json:"properties,omitempty"`
	// PayloadBase64 is the payload, base64 (standard, padded).
	PayloadBase64 []byte `json:"payload_base64"`
	// PayloadText is the payload when it is valid UTF-8 of printable
	// characters (and spaces, tabs, newlines); absent otherwise.
	PayloadText *string `json:"payload_text,omitempty"`
}

// NewRetainedDetail converts the broker's retained message.
func NewRetainedDetail(m broker.RetainedMessage) RetainedDetail {
	d := RetainedDetail{Retained: newRetained(m.RetainedInfo), PayloadBase64: m.Payload}
	if d.PayloadBase64 == nil {
		d.PayloadBase64 = []byte{}
	}
	if PrintableText(m.Payload) {
		t := string(m.Payload)
		d.PayloadText = &t
	}
	d.Properties = newMessageProperties(m.Props)
	return d
}

// PrintableText reports whether b is non-empty valid UTF-8 whose runes
// are printable or spaces, tabs, carriage returns and newlines: a
// payload a terminal shows as it is.
func PrintableText(b []byte) bool {
	if len(b) == 0 || !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && r != '\n' && r != '\r' && r != '\t' {
			return false
		}
	}
	return true
}

func (s *Server) retainedRoutes() {
	// {topic...}: a topic's "/" may come escaped (%2F) or not.
	s.mux.HandleFunc("GET /api/v1/retained/{topic...}", s.retainedGet)
	s.mux.HandleFunc("DELETE /api/v1/retained/{topic...}", s.retainedDelete)
}

// retainedList answers GET /api/v1/retained?topic=FILTER: the retained
// messages matching FILTER.
func (s *Server) retainedList(w http.ResponseWriter, filter string) {
	if !available(w, s.opts.Retained, "retained messages") {
		return
	}
	in, err := s.opts.Retained.RetainedMatching(filter)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, broker.ErrInvalidTopic) {
			code = http.StatusBadRequest
		}
		writeError(w, code, err.Error())
		return
	}
	out := make([]Retained, 0, len(in))
	for _, m := range in {
		out = append(out, newRetained(m))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) retainedGet(w http.ResponseWriter, r *http.Request) {
	if !available(w, s.opts.Retained, "retained messages") {
		return
	}
	topic := r.PathValue("topic")
	m, ok := s.opts.Retained.RetainedMessage(topic)
	if !ok {
		writeError(w, http.StatusNotFound, "no retained message on "+topic)
		return
	}
	writeJSON(w, http.StatusOK, NewRetainedDetail(m))
}

func (s *Server) retainedDelete(w http.ResponseWriter, r *http.Request) {
	if !available(w, s.opts.Retained, "retained messages") {
		return
	}
	topic := r.PathValue("topic")
	had, err := s.opts.Retained.DeleteRetained(topic)
	switch {
	case errors.Is(err, broker.ErrInvalidTopic):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	case !had:
		writeError(w, http.StatusNotFound, "no retained message on "+topic)
		return
	}
	s.log.Info("retained message deleted through the admin API", logTopic, topic)
	writeJSON(w, http.StatusOK, map[string]string{"deleted": topic})
}

// newStored returns t for JSON, nil when zero.
func newStored(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
