package broker

import (
	"gatemq/boltstore"
	"gatemq/session"
)

// Archive is what the broker needs of the message archive;
// *boltstore.Archive implements it. Rule must not block or allocate: it
// runs for every message. Add may block while the archive's write queue
// is full (which paces publishers to the disk); its done callback, when
// given, runs on the archive's writer goroutine and must not block.
type Archive interface {
	Rule(topic string) int
	Add(rule int, topic string, meta, payload []byte, done func(id uint64, err error))
}

var _ Archive = (*boltstore.Archive)(nil)

// archive hands m to the message archive when a rule takes its topic,
// once, whatever its subscribers. The archive writes it in its own group
// commits: the publisher's PUBACK or PUBREC does not wait for that write
// (after a crash the last few milliseconds of archived messages may be
// missing; a clean stop loses none). Wills and the broker's own $SYS
// messages are archived too when a rule names their topic. It returns
// m's encoded meta when it made it (nil otherwise), for the durable
// store to use too.
func (s *Server) archive(m *session.Message) (meta []byte) {
	a := s.opts.Archive
	if a == nil {
		return nil
	}
	if rule := a.Rule(m.Topic); rule >= 0 {
		meta = session.EncodeMeta(m)
		a.Add(rule, m.Topic, meta, m.Payload, nil)
	}
	return meta
}
