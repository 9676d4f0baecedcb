package gossip

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"time"
)

// eventKind is what happened to a member.
type eventKind uint8

const (
	evJoin     eventKind = iota // joined, or came back from dead or left
	evLeave                     // left on purpose
	evFail                      // declared dead
	evSuspect                   // a probe of it failed
	evRecover                   // suspect, then answered
	evUpdate                    // its metadata changed
	evConflict                  // two nodes claim one name
)

func (k eventKind) String() string {
	switch k {
	case evJoin:
		return "join"
	case evLeave:
		return "leave"
	case evFail:
		return "fail"
	case evSuspect:
		return "suspect"
	case evRecover:
		return "recover"
	case evUpdate:
		return "update"
	case evConflict:
		return "conflict"
	}
	return "unknown"
}

// event is a change the logging goroutine logs; m is a copy.
type event struct {
	kind  eventKind
	m     Member
	other string // evConflict: the other node's address
}

// eventQueue is how many events may wait for the logging goroutine.
const eventQueue = 256

// emit hands e to the logging goroutine without waiting: memberlist
// calls the delegates with its lock held. When the queue is full the
// event is counted, and the count logged later; the member table has
// the change anyway.
func (g *Group) emit(e event) {
	if e.m.Self {
		return
	}
	select {
	case g.events <- e:
	default:
		g.dropped.Add(1)
	}
}

// logEvents logs the events until ctx is done, then those still queued.
func (g *Group) logEvents(ctx context.Context) {
	defer g.wg.Done()
	for {
		select {
		case e := <-g.events:
			g.logEvent(e)
		case <-ctx.Done():
			for {
				select {
				case e := <-g.events:
					g.logEvent(e)
				default:
					return
				}
			}
		}
	}
}

func (g *Group) logEvent(e event) {
	if n := g.dropped.Swap(0); n > 0 {
		g.log.Warn("peer events not logged: too many at once", logDropped, n)
	}
	attrs := []any{logPeer, e.m.Name, logAddress, e.m.Addr}
	switch e.kind {
	case evJoin:
		g.log.Info("peer joined", append(attrs, logSite, e.m.Site, logVersion, e.m.Version)...)
	case evLeave:
		g.log.Info("peer left", attrs...)
	case evFail:
		g.log.Warn("peer failed", attrs...)
	case evSuspect:
		g.log.Info("peer suspect: a probe got no answer", attrs...)
	case evRecover:
		g.log.Info("peer answers again", attrs...)
	case evUpdate:
		g.log.Debug("peer updated", append(attrs, logSite, e.m.Site, logVersion, e.m.Version)...)
	case evConflict:
		// memberlist reports the conflict for every copy of the other's
		// alive message it receives: say it once a minute.
		key := e.m.Name + " " + e.other
		if t, ok := g.conflicts[key]; ok && g.now().Sub(t) < conflictLogInterval {
			return
		}
		if len(g.conflicts) >= maxConflicts {
			clear(g.conflicts)
		}
		g.conflicts[key] = g.now()
		g.log.Error("two gateways claim one peer name: give each its own peer_group.name", append(attrs, logOther, e.other)...)
	}
}

// A name conflict is logged once per conflictLogInterval, for up to
// maxConflicts conflicts at once.
const (
	conflictLogInterval = time.Minute
	maxConflicts        = 64
)

// mlLog is the io.Writer behind memberlist's *log.Logger: each line goes
// to the group's logger at debug level, and the line of a failed probe
// marks the member suspect (see the package documentation).
type mlLog Group

var _ io.Writer = (*mlLog)(nil)

func (w *mlLog) Write(p []byte) (int, error) {
	g := (*Group)(w)
	line := strings.TrimSpace(string(p))
	level := ""
	if rest, ok := strings.CutPrefix(line, "["); ok {
		if l, msg, ok := strings.Cut(rest, "] "); ok {
			level, line = l, msg
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	if name, ok := suspectName(line); ok {
		g.suspect(name)
	}
	g.log.Debug("memberlist", logLevel, level, logLine, line)
	return len(p), nil
}

// suspectName returns the member named by memberlist's line for a failed
// probe, which it logs just before it marks the member suspect
// (memberlist's probeNode).
func suspectName(line string) (string, bool) {
	rest, ok := strings.CutPrefix(line, "Suspect ")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, " has failed, no acks received")
}

// discard is the logger of a Group without Options.Logger.
var discard = slog.New(slog.DiscardHandler)
