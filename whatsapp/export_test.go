package whatsapp

// HeldDownloads is how many media items session's downloader holds in
// memory (for the bound test).
func HeldDownloads(e *Engine, session string) int {
	e.dl.init()
	e.dl.mu.Lock()
	defer e.dl.mu.Unlock()
	return len(e.dl.queueOf(session).known)
}
