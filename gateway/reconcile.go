package gateway

// requestReconcile asks the revocation unit for a reconcile pass soon (and
// wakes its queued revocations): pub/sub may have lost events, or Redis may
// be back. It never blocks.
func (s *Server) requestReconcile(reason string) {
	s.rev.Trigger(reason)
}
