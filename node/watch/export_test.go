package watch

// Cursor is how far the service has read the store's log.
func (s *Service) Cursor() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursor
}
