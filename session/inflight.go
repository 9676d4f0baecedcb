package session

// inflightList holds the outbound QoS 1 and 2 deliveries awaiting
// acknowledgement, in the order they were sent, indexed by packet
// identifier. An acknowledged entry leaves a hole that is reclaimed from
// the front, so acknowledgements in order (the usual case) cost O(1)
// whatever the window, and a session with a window of thousands pays no
// more per message than one with a window of ten.
type inflightList struct {
	list  []Delivery     // send order; State Queued marks a hole
	head  int            // list[:head] are holes
	sent  int            // list[head:sent] were sent on this connection
	live  int            // entries that are not holes
	index map[uint16]int // packet identifier -> position in list
}

func (l *inflightList) len() int { return l.live }

// add records d, already sent, as the newest entry.
func (l *inflightList) add(d Delivery) {
	if l.index == nil {
		l.index = make(map[uint16]int)
	}
	l.index[d.PacketID] = len(l.list)
	l.list = append(l.list, d)
	l.live++
	l.sent = len(l.list)
}

// get returns the entry with packet identifier id, or nil.
func (l *inflightList) get(id uint16) *Delivery {
	i, ok := l.index[id]
	if !ok {
		return nil
	}
	return &l.list[i]
}

// remove deletes the entry with packet identifier id and reports whether
// there was one.
func (l *inflightList) remove(id uint16) bool {
	i, ok := l.index[id]
	if !ok {
		return false
	}
	delete(l.index, id)
	l.list[i] = Delivery{}
	l.live--
	for l.head < len(l.list) && l.list[l.head].State == Queued {
		l.head++
	}
	switch {
	case l.head == len(l.list):
		l.list, l.head, l.sent = l.list[:0], 0, 0
	case l.head > 64 && l.head*2 > len(l.list):
		l.compact()
	}
	return true
}

// compact moves the entries to the front of the list, dropping the holes
// there, and renumbers the index.
func (l *inflightList) compact() {
	n := copy(l.list, l.list[l.head:])
	clear(l.list[n:])
	l.list = l.list[:n]
	l.sent -= l.head
	if l.sent < 0 {
		l.sent = 0
	}
	l.head = 0
	for i := range l.list {
		if l.list[i].State != Queued {
			l.index[l.list[i].PacketID] = i
		}
	}
}

// rewind marks every entry unsent, for a new connection.
func (l *inflightList) rewind() { l.sent = l.head }

// nextUnsent returns the oldest entry not yet sent on this connection and
// marks it sent.
func (l *inflightList) nextUnsent() (Delivery, bool) {
	for l.sent < len(l.list) {
		d := l.list[l.sent]
		l.sent++
		if d.State != Queued {
			return d, true
		}
	}
	return Delivery{}, false
}
