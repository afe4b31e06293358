package connmgr

// Start is how a connection made by [Manager.UpgradeWith] begins: the
// history fields of its welcome and the events it missed.
type Start struct {
	// Positions are the current positions of the connection's history
	// streams, by the client's name for them ("user", "all"); nil sends
	// none.
	Positions map[string]StreamPosition
	// Recovered, when set, is the welcome's "recovered": whether every
	// stream the client asked to resume was recovered. Nil (the client did
	// not ask) leaves it out.
	Recovered *bool
	// Lost names the streams the client asked to resume that were not
	// recovered (the welcome's "lost").
	Lost []string
	// Replay are the frames of the events the client missed, oldest
	// first, written right after the welcome and before any held frame.
	// They do not count against [Config.SendQueue].
	Replay [][]byte
	// Skip reports whether a frame held while Start was being made is
	// already in Replay or was before the client's position; nil keeps
	// every held frame. It is called with the connection's lock held: it
	// must not call the Manager.
	Skip func(frame []byte) bool
}

// begin puts st into c, registered by upgrade with its welcome queued and
// the flush token held by the caller: it replaces the welcome with st's,
// drops the held frames st.Skip names, and returns the frames to write
// before the queue (the welcome, then st.Replay). A closing c returns
// nothing: the flush runs the close.
func (m *Manager) begin(c *conn, st Start) [][]byte {
	welcome := EncodeWelcome(c.info.ID, c.info.UserID, m.cfg.InstanceID, m.cfg.PingInterval, st)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return nil
	}
	// c.queue[0] is the placeholder register queued (nil): the flush
	// token has been held since, so nothing took it.
	n := 0
	for _, f := range c.queue[1:] {
		if st.Skip == nil || !st.Skip(f) {
			c.queue[n] = f
			n++
		}
	}
	clear(c.queue[n:])
	c.queue = c.queue[:n]
	head := make([][]byte, 0, 1+len(st.Replay))
	return append(append(head, welcome), st.Replay...)
}
