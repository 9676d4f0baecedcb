package admin

import (
	"net/http"
	"time"

	"gatemq/boltstore"
	"gatemq/broker"
)

// kickTimeout is how long a kick waits for the client's connection to
// close after the DISCONNECT.
const kickTimeout = 5 * time.Second

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /metrics", s.metricsHandler)
	s.mux.HandleFunc("GET /api/v1/clients", s.clients)
	s.mux.HandleFunc("GET /api/v1/clients/{client_id}", s.client)
	s.mux.HandleFunc("POST /api/v1/clients/{client_id}", s.kick)
	s.mux.HandleFunc("DELETE /api/v1/clients/{client_id}", s.kick)
	s.mux.HandleFunc("GET /api/v1/sessions", s.sessions)
	s.mux.HandleFunc("GET /api/v1/sessions/{client_id}", s.session)
	s.mux.HandleFunc("GET /api/v1/retained", s.retained)
	s.mux.HandleFunc("GET /api/v1/ds", s.ds)
	s.mux.HandleFunc("GET /api/v1/export", s.export)
	s.mux.HandleFunc("GET /api/v1/peers", s.peers)
	s.presetRoutes()
	s.retainedRoutes()
	s.mux.HandleFunc("GET /api/v1/messages", s.messages)
	s.mux.HandleFunc("GET /api/v1/messages/{id}", s.message)
}

// healthz answers while the process can serve HTTP at all.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Health{Status: "ok", DataDir: s.opts.DataDir})
}

// readyz answers 200 once the broker accepts connections. main starts
// the API after the store is restored and the listeners are up, so a
// listener that stopped is what makes it fail.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.opts.Broker.Listening() == 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "no listener is accepting"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) metricsHandler(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.metrics.write(w)
}

// clients lists client status records: ?state=online or offline, or
// every one.
func (s *Server) clients(w http.ResponseWriter, r *http.Request) {
	f, ok := broker.ParseStatusFilter(r.URL.Query().Get("state"))
	if !ok {
		writeError(w, http.StatusBadRequest, "state must be online or offline")
		return
	}
	in, err := s.opts.Broker.ClientStatuses(f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := make([]ClientStatus, 0, len(in))
	for _, c := range in {
		out = append(out, NewClientStatus(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) client(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("client_id")
	c, ok, err := s.opts.Broker.ClientStatus(id)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	case !ok:
		writeError(w, http.StatusNotFound, "no status for client: "+id)
	default:
		writeJSON(w, http.StatusOK, NewClientStatus(c))
	}
}

func (s *Server) kick(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("client_id")
	if !s.opts.Broker.Kick(id, kickTimeout) {
		writeError(w, http.StatusNotFound, "client not connected: "+id)
		return
	}
	s.log.Info("client kicked through the admin API", logClientID, id)
	writeJSON(w, http.StatusOK, map[string]string{"kicked": id})
}

func (s *Server) sessions(w http.ResponseWriter, r *http.Request) {
	in := s.opts.Broker.Sessions()
	out := make([]Session, 0, len(in))
	for _, si := range in {
		info, subs, ok := s.opts.Broker.Session(si.ClientID)
		if !ok {
			continue // ended meanwhile
		}
		out = append(out, newSessionDetail(info, subs).Session)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) session(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("client_id")
	info, subs, ok := s.opts.Broker.Session(id)
	if !ok {
		writeError(w, http.StatusNotFound, "no session: "+id)
		return
	}
	writeJSON(w, http.StatusOK, newSessionDetail(info, subs))
}

func (s *Server) retained(w http.ResponseWriter, r *http.Request) {
	if f := r.URL.Query().Get("topic"); f != "" {
		s.retainedList(w, f)
		return
	}
	in := s.opts.Broker.RetainedMessages()
	out := make([]Retained, 0, len(in))
	for _, m := range in {
		out = append(out, newRetained(m))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) ds(w http.ResponseWriter, r *http.Request) {
	if s.opts.Store == nil {
		writeError(w, http.StatusNotFound, "no durable store: durable sessions are off on every listener")
		return
	}
	writeJSON(w, http.StatusOK, NewDSInfo(s.opts.Store.Info()))
}

// export streams the store as a backup in JSON lines (boltstore.Export).
// An error once the answer has started cuts it short: the backup then
// lacks its last line, and an import refuses it.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	if s.opts.Store == nil {
		writeError(w, http.StatusNotFound, "no durable store: durable sessions are off on every listener")
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	var archive []boltstore.ExportFile
	if s.opts.Archive != nil {
		archive = s.opts.Archive.Files("archive")
	}
	st, err := s.opts.Store.ExportAll(w, archive...)
	if err != nil {
		s.log.Error("export cut short", "err", err)
		return
	}
	s.log.Info("exported the store", "files", st.Files, "buckets", st.Buckets, "keys", st.Keys)
}

// peers lists the members of the peer group, this gateway first.
func (s *Server) peers(w http.ResponseWriter, r *http.Request) {
	if s.opts.Peers == nil {
		writeError(w, http.StatusNotFound, "no peer group: [peer_group] enable is false, or the group did not start (see the broker's log)")
		return
	}
	in := s.opts.Peers.Members()
	out := make([]Peer, 0, len(in))
	for _, m := range in {
		out = append(out, newPeer(m))
	}
	writeJSON(w, http.StatusOK, out)
}
