package webui

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/meshprotocol/mesh/node/api"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Defaults of Config.
const (
	DefaultSessionTTL = 12 * time.Hour
	// LoginTTL is how long a login link may wait to be opened.
	LoginTTL = 5 * time.Minute
	// maxLogins and maxSessions bound what is kept in memory.
	maxLogins   = 64
	maxSessions = 256
)

// Config configures a Server.
type Config struct {
	// API is the node the UI shows and acts on.
	API api.API
	// SessionTTL is how long a session lasts; 0 means DefaultSessionTTL.
	SessionTTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the UI's logs; nil discards them. Record contents
	// and queries are never logged.
	Logger *slog.Logger
}

// Server serves the web UI. It is safe for concurrent use.
type Server struct {
	api  api.API
	ttl  time.Duration
	now  func() time.Time
	log  *slog.Logger
	mux  *http.ServeMux
	tmpl map[string]*template.Template

	mu       sync.Mutex
	logins   map[string]time.Time // one-time login token -> expiry
	sessions map[string]*session  // session id -> session
	lastSync *syncReport
}

type session struct {
	csrf    string
	expires time.Time
}

// New returns the UI over cfg.API.
func New(cfg Config) *Server {
	s := &Server{api: cfg.API, ttl: cfg.SessionTTL, now: cfg.Now, log: cfg.Logger,
		logins: map[string]time.Time{}, sessions: map[string]*session{}}
	if s.ttl <= 0 {
		s.ttl = DefaultSessionTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.tmpl = parseTemplates()
	s.routes()
	return s
}

// NewLogin makes a one-time login link: its path and query. It is valid
// for LoginTTL, once.
func (s *Server) NewLogin() (string, error) {
	tok := randomHex(32)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for t, exp := range s.logins {
		if now.After(exp) {
			delete(s.logins, t)
		}
	}
	if len(s.logins) >= maxLogins {
		return "", fmt.Errorf("webui: %d login links are waiting to be opened; open one or wait %v", len(s.logins), LoginTTL)
	}
	s.logins[tok] = now.Add(LoginTTL)
	return "/login?token=" + tok, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// cookieName is the session cookie's name: per port, since cookies do not
// tell ports apart and several nodes may run on one machine.
func cookieName(r *http.Request) string {
	_, port, err := net.SplitHostPort(r.Host)
	if err != nil || port == "" {
		port = "80"
	}
	return "mesh_session_" + port
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // "no-referrer" would make the browser send Origin: null on form posts
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, static, "favicon.svg")
	})
	m.HandleFunc("GET /login", s.handleLogin)
	m.HandleFunc("GET /{$}", s.page(s.nodePage))
	m.HandleFunc("POST /sync", s.action(s.doSync))
	m.HandleFunc("POST /logout", s.action(s.doLogout))
	m.HandleFunc("GET /memories", s.page(s.memoriesPage))
	m.HandleFunc("POST /memories", s.action(s.doStore))
	m.HandleFunc("GET /memories/{id}", s.page(s.memoryPage))
	m.HandleFunc("POST /memories/{id}/publish", s.action(s.doPublish))
	m.HandleFunc("POST /memories/{id}/revoke", s.action(s.doRevoke))
	m.HandleFunc("POST /memories/{id}/delete", s.action(s.doDelete))
	m.HandleFunc("GET /search", s.page(s.searchPage))
	m.HandleFunc("GET /trust", s.page(s.trustPage))
	m.HandleFunc("POST /trust/add", s.action(s.doTrustAdd))
	m.HandleFunc("POST /trust/remove", s.action(s.doTrustRemove))
	m.HandleFunc("GET /following", s.page(s.followingPage))
	m.HandleFunc("POST /following/follow", s.action(s.doFollow))
	m.HandleFunc("POST /following/unfollow", s.action(s.doUnfollow))
	m.HandleFunc("GET /watches", s.page(s.watchesPage))
	m.HandleFunc("POST /watches/add", s.action(s.doWatchAdd))
	m.HandleFunc("POST /watches/remove", s.action(s.doWatchRemove))
	m.HandleFunc("GET /watches/events", s.withSession(s.watchEvents))
	m.HandleFunc("GET /sensors", s.page(s.sensorsPage))
	m.HandleFunc("POST /sensors/grant", s.action(s.doAccessGrant))
	m.HandleFunc("POST /sensors/revoke", s.action(s.doAccessRevoke))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.renderError(w, r, http.StatusNotFound, "Not found", "There is no page "+r.URL.Path+" here.")
	})
	s.mux = m
}

// handleLogin trades a one-time login token for a session cookie.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	s.mu.Lock()
	exp, ok := s.logins[tok]
	delete(s.logins, tok)
	now := s.now()
	valid := ok && tok != "" && now.Before(exp)
	var id string
	if valid {
		for k, ss := range s.sessions {
			if now.After(ss.expires) {
				delete(s.sessions, k)
			}
		}
		if len(s.sessions) >= maxSessions {
			for k := range s.sessions { // drop one: the map's order is random
				delete(s.sessions, k)
				break
			}
		}
		id = randomHex(32)
		s.sessions[id] = &session{csrf: randomHex(32), expires: now.Add(s.ttl)}
	}
	s.mu.Unlock()
	if !valid {
		s.renderError(w, r, http.StatusForbidden, "Login link used or expired",
			"A login link works once, within "+LoginTTL.String()+". Run mesh ui for a new one.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName(r), Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Expires: now.Add(s.ttl), MaxAge: int(s.ttl.Seconds()),
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// sessionOf returns the request's live session, or nil.
func (s *Server) sessionOf(r *http.Request) *session {
	c, err := r.Cookie(cookieName(r))
	if err != nil || c.Value == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[c.Value]
	if ss == nil || s.now().After(ss.expires) {
		return nil
	}
	return ss
}

// withSession serves h to requests with a session; others get a page
// saying how to log in.
func (s *Server) withSession(h func(w http.ResponseWriter, r *http.Request, ss *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss := s.sessionOf(r)
		if ss == nil {
			s.renderError(w, r, http.StatusUnauthorized, "Log in",
				"This page needs a session: run mesh ui on this machine and open the link it prints.")
			return
		}
		h(w, r, ss)
	}
}

// sameOrigin reports whether a state-changing request comes from the UI's
// own pages: its Origin is the UI's, or (no Origin) the browser says
// same-origin.
func sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		return err == nil && u.Scheme == "http" && u.Host == r.Host
	}
	return r.Header.Get("Sec-Fetch-Site") == "same-origin"
}

// action serves a state-changing form post: session, same origin and the
// session's form token, or 403. fn returns where to go next and what to
// say there (or an error to say).
func (s *Server) action(fn func(r *http.Request) (to, msg string, err error)) http.HandlerFunc {
	return s.withSession(func(w http.ResponseWriter, r *http.Request, ss *session) {
		if !sameOrigin(r) {
			s.renderError(w, r, http.StatusForbidden, "Refused", "A form from another site may not change this node.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		if err := r.ParseForm(); err != nil {
			s.renderError(w, r, http.StatusBadRequest, "Bad form", err.Error())
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ss.csrf)) != 1 {
			s.renderError(w, r, http.StatusForbidden, "Refused", "The form is stale or not this session's: reload the page and try again.")
			return
		}
		to, msg, err := fn(r)
		if to == "" {
			to = "/"
		}
		q := url.Values{}
		if err != nil {
			q.Set("err", err.Error())
		} else if msg != "" {
			q.Set("ok", msg)
		}
		if len(q) > 0 {
			sep := "?"
			if strings.Contains(to, "?") {
				sep = "&"
			}
			to += sep + q.Encode()
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
	})
}

// badRequest is a page's error caused by the request (a malformed ID in
// the path): 400, not 500.
type badRequest struct{ error }

// view is what every page's template gets.
type view struct {
	Title  string
	Active string
	CSRF   string
	OK     string
	Err    string
	Self   string
	Data   any
}

// page serves a GET page: fn fills the view's Title, Active and Data.
func (s *Server) page(fn func(r *http.Request, v *view) (tmpl string, err error)) http.HandlerFunc {
	return s.withSession(func(w http.ResponseWriter, r *http.Request, ss *session) {
		v := &view{CSRF: ss.csrf, OK: r.URL.Query().Get("ok"), Err: r.URL.Query().Get("err")}
		if info, err := s.api.Info(r.Context()); err == nil {
			v.Self = info.NodeID
		}
		name, err := fn(r, v)
		var bad badRequest
		if errors.As(err, &bad) {
			s.renderError(w, r, http.StatusBadRequest, "Bad request", err.Error())
			return
		}
		if err != nil {
			s.renderError(w, r, http.StatusInternalServerError, "Error", err.Error())
			return
		}
		s.render(w, http.StatusOK, name, v)
	})
}

func (s *Server) render(w http.ResponseWriter, status int, name string, v *view) {
	t := s.tmpl[name]
	if t == nil {
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		s.log.Error("webui: render", "page", name, "err", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	s.render(w, status, "error", &view{Title: title, Data: msg})
}
