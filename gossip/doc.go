// Package gossip is gatemq's peer group: the gateways of one site, which
// know of each other through hashicorp/memberlist (SWIM gossip over TCP
// and UDP). For now the group gives membership and health only: each
// gateway sees the others' names, addresses, site IDs and versions, and
// whether each is alive, suspect, dead (failed) or left. It replicates
// nothing.
//
// # Members and states
//
// [Start] creates the memberlist node and returns a [Group]; seeds in
// Options.Join are joined in the background, retried until one answers
// (a gateway may start before the others). [Group.Members] is this
// gateway's view:
//
//   - alive: it answers, directly or through others.
//   - suspect: this gateway's probe of it got no answer, directly or
//     through others; it is dead unless it answers within memberlist's
//     suspicion timeout (a few probe intervals).
//   - dead: it failed (killed, powered off, cut off). Dead members are
//     asked to join again every ReconnectInterval for 24 hours, so a
//     gateway restarted without a join list of its own comes back.
//   - left: it left on purpose ([Group.Leave], on SIGTERM).
//
// Dead and left members are listed for 24 hours after they went, at most
// 64 of them (the oldest go first).
//
// memberlist reports joins, failures and departures, and metadata
// updates, through its EventDelegate; the rest is built on that:
//
//   - Left or dead: memberlist 0.7 never sets Node.State (its nodeState
//     has a State field of its own that shadows it), so NotifyLeave
//     cannot tell a departure from a failure. A gateway that leaves
//     first says so in its metadata ([Group.Leave]), and a member whose
//     last metadata said so has left; any other has failed.
//   - Suspect: memberlist has no event for suspicion. The group learns of
//     it from the line memberlist logs when this gateway's probe fails
//     ("Suspect NAME has failed, no acks received", see suspectName),
//     and of a suspect member answering again from the PingDelegate.
//
// TestGroup_States fails if a memberlist upgrade breaks either.
//
// # Metadata
//
// Each node's memberlist metadata is a small JSON object (meta.go) with
// its store's site ID, its gatemq version and, once it leaves, a leaving
// flag; unknown fields are ignored, so later versions can add to it.
//
// # Security
//
// With Options.SecretKey (16, 24 or 32 bytes, see [ReadKey]) memberlist
// encrypts and authenticates every message with AES-GCM, and a node
// without the key cannot join. Without one the gossip is in clear and
// anyone who reaches the port can join; conf refuses that unless the
// group binds to loopback only.
//
// # Goroutines and locks
//
// memberlist calls the delegates from its own goroutines, sometimes with
// its node lock held: they must not block. They update the member table
// under Group.mu (memory work only) and hand an event to the group's
// logging goroutine through a buffered channel, never waiting: when it is
// full the event is counted and not logged. A second goroutine joins and
// rejoins. Group.life serialises Leave and Shutdown, and is held across
// those memberlist calls only, because memberlist panics on a Leave after
// Shutdown. Lock order: life, then mu.
package gossip
