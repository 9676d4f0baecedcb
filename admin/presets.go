package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"gatemq/broker"
)

// PresetManager is what the /api/v1/presets endpoints need;
// *broker.Server implements it. SetPreset and DeletePreset block until
// the change is committed to the store.
type PresetManager interface {
	Presets(clientID string) []broker.PresetInfo
	SetPreset(clientID string, p broker.Preset) (applied bool, err error)
	DeletePreset(clientID, filter string) (removed int, applied bool, err error)
}

var _ PresetManager = (*broker.Server)(nil)

// Preset is a preset subscription, in GET /api/v1/presets and
// /api/v1/presets/{client_id}. A configured rule for every client has
// client ID "*"; its filter is shown as configured (with %c and %u), or
// for one client with %c (and, while the client is connected, %u)
// replaced.
type Preset struct {
	ClientID          string `json:"client_id"`
	Filter            string `json:"filter"`
	QoS               byte   `json:"qos"`
	NoLocal           bool   `json:"no_local"`
	RetainAsPublished bool   `json:"retain_as_published"`
	RetainHandling    byte   `json:"retain_handling"`
	Source            string `json:"source"` // "stored" or "config"
}

// PresetRequest is the body of PUT /api/v1/presets/{client_id}.
type PresetRequest struct {
	Filter            string `json:"filter"`
	QoS               byte   `json:"qos"`
	NoLocal           bool   `json:"no_local"`
	RetainAsPublished bool   `json:"retain_as_published"`
	RetainHandling    byte   `json:"retain_handling"`
}

// PresetChange answers PUT and DELETE /api/v1/presets/{client_id}.
type PresetChange struct {
	ClientID string `json:"client_id"`
	Filter   string `json:"filter,omitempty"`  // "" for all of the client's
	Removed  int    `json:"removed,omitempty"` // DELETE: how many
	// Applied says the client was connected and got the change at once;
	// otherwise it gets it at its next connection.
	Applied bool `json:"applied"`
}

// NewPresets converts the broker's presets.
func NewPresets(in []broker.PresetInfo) []Preset {
	out := make([]Preset, 0, len(in))
	for _, p := range in {
		out = append(out, Preset{ClientID: p.ClientID, Filter: p.Filter, QoS: p.QoS, NoLocal: p.NoLocal,
			RetainAsPublished: p.RetainAsPublished, RetainHandling: p.RetainHandling, Source: p.Source})
	}
	return out
}

// Preset returns the broker's preset for the request.
func (r PresetRequest) Preset() broker.Preset {
	return broker.Preset{Filter: r.Filter, QoS: r.QoS, NoLocal: r.NoLocal,
		RetainAsPublished: r.RetainAsPublished, RetainHandling: r.RetainHandling}
}

func (s *Server) presetRoutes() {
	s.mux.HandleFunc("GET /api/v1/presets", s.presetsAll)
	s.mux.HandleFunc("GET /api/v1/presets/{client_id}", s.presetsOf)
	s.mux.HandleFunc("PUT /api/v1/presets/{client_id}", s.presetSet)
	s.mux.HandleFunc("DELETE /api/v1/presets/{client_id}", s.presetDelete)
}

// available reports whether v, an optional Options field, is set, and
// answers 404 saying that what is not available when it is not.
func available[T comparable](w http.ResponseWriter, v T, what string) bool {
	var none T
	if v == none {
		writeError(w, http.StatusNotFound, what+" not available")
		return false
	}
	return true
}

func (s *Server) presetsAll(w http.ResponseWriter, r *http.Request) {
	if available(w, s.opts.Presets, "preset subscriptions") {
		writeJSON(w, http.StatusOK, NewPresets(s.opts.Presets.Presets("")))
	}
}

func (s *Server) presetsOf(w http.ResponseWriter, r *http.Request) {
	if available(w, s.opts.Presets, "preset subscriptions") {
		writeJSON(w, http.StatusOK, NewPresets(s.opts.Presets.Presets(r.PathValue("client_id"))))
	}
}

// maxPresetBody bounds a PUT body: a filter is at most 65535 bytes.
const maxPresetBody = 1 << 18

func (s *Server) presetSet(w http.ResponseWriter, r *http.Request) {
	if !available(w, s.opts.Presets, "preset subscriptions") {
		return
	}
	id := r.PathValue("client_id")
	var req PresetRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxPresetBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "preset: "+err.Error())
		return
	}
	applied, err := s.opts.Presets.SetPreset(id, req.Preset())
	if err != nil {
		writePresetError(w, err)
		return
	}
	s.log.Info("preset subscription set through the admin API", logClientID, id, logFilter, req.Filter, logApplied, applied)
	writeJSON(w, http.StatusOK, PresetChange{ClientID: id, Filter: req.Filter, Applied: applied})
}

func (s *Server) presetDelete(w http.ResponseWriter, r *http.Request) {
	if !available(w, s.opts.Presets, "preset subscriptions") {
		return
	}
	id, filter := r.PathValue("client_id"), r.URL.Query().Get("filter")
	n, applied, err := s.opts.Presets.DeletePreset(id, filter)
	if err != nil {
		writePresetError(w, err)
		return
	}
	if n == 0 {
		msg := "no stored preset subscription for " + id
		if filter != "" {
			msg += " to " + filter
		}
		writeError(w, http.StatusNotFound, msg)
		return
	}
	s.log.Info("preset subscriptions deleted through the admin API", logClientID, id, logFilter, filter, "removed", n, logApplied, applied)
	writeJSON(w, http.StatusOK, PresetChange{ClientID: id, Filter: filter, Removed: n, Applied: applied})
}

func writePresetError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, broker.ErrInvalidPreset):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, broker.ErrNoPresetStore):
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}
