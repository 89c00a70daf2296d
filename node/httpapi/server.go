package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshprotocol/mesh/internal/atomicfile"
)

// Files in the repo that tell the CLI where the daemon's API is.
const (
	// APIFile holds the base URL of the running daemon's HTTP API.
	APIFile = "api"
	// TokenFile holds the bearer token of the control API, mode 0600.
	TokenFile = "api.token"
)

// Config configures a Server.
type Config struct {
	// Addr is the loopback address to listen on ("127.0.0.1:8765"); port
	// 0 picks a free port. Other addresses are refused.
	Addr string
	// Backend answers the requests.
	Backend Backend
	// RepoDir, if set, is where the server keeps its token (TokenFile,
	// created on first use) and writes its URL (APIFile, removed on
	// Close). If empty, a fresh token is made and nothing is written.
	RepoDir string
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// AMPOpen serves the AMP routes (/amp/...) without the bearer token,
	// to any local user (see HandlerOpen). False, the default, requires
	// the token on every route.
	AMPOpen bool
	// Metrics, if set, is served at GET /metrics behind the bearer token
	// (Prometheus: authorization with the repo's api.token).
	Metrics http.Handler
	// Registerer receives the server's metrics (requests by route and
	// status code); nil registers none.
	Registerer prometheus.Registerer
	// UI, if set, is the web UI: it serves every path the API does not,
	// and the control API's POST /api/v1/ui/login asks it for one-time
	// login links (mesh ui).
	UI UI
}

// UI is a web UI served on the API's address. It must be safe for
// concurrent use.
type UI interface {
	http.Handler
	// NewLogin returns the path, with its query, of a new one-time login
	// link ("/login?token=..."), to open on the API's address.
	NewLogin() (string, error)
}

// Server serves the node's HTTP API on loopback until Close.
type Server struct {
	cfg   Config
	log   *slog.Logger
	token string
	url   string
	srv   *http.Server
	done  chan struct{}
	m     *httpMetrics

	closeOnce sync.Once
}

// Start listens on cfg.Addr and serves Handler there.
func Start(cfg Config) (*Server, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("httpapi: api address %q: %w", cfg.Addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("httpapi: api address %q: the API serves loopback only (127.0.0.1, ::1 or localhost)", cfg.Addr)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, done: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.token, err = loadToken(cfg.RepoDir); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("httpapi: listen %s: %w", cfg.Addr, err)
	}
	s.url = "http://" + ln.Addr().String()
	if s.m, err = newHTTPMetrics(cfg.Registerer); err != nil {
		ln.Close()
		return nil, fmt.Errorf("httpapi: register metrics: %w", err)
	}
	if cfg.AMPOpen { // before the first request can be answered
		s.log.Warn("api open: the AMP routes (/amp/) answer every local user without the api token; any user of this machine can read and delete private records", "api", s.url)
	}
	s.srv = &http.Server{
		Handler:           s.m.wrap(newHandler(cfg.Backend, s.token, options{ampOpen: cfg.AMPOpen, metrics: cfg.Metrics, ui: cfg.UI})),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api server stopped", "err", err)
		}
	}()
	if cfg.RepoDir != "" {
		if err := atomicfile.WriteFile(filepath.Join(cfg.RepoDir, APIFile), []byte(s.url+"\n"), 0o600); err != nil {
			s.Close()
			return nil, fmt.Errorf("httpapi: write api file: %w", err)
		}
	}
	s.log.Info("api listening", "addr", ln.Addr().String())
	return s, nil
}

// URL is the base URL the server listens on ("http://127.0.0.1:8765").
func (s *Server) URL() string { return s.url }

// Token is the control API's bearer token.
func (s *Server) Token() string { return s.token }

// Close stops the server, waiting up to 5 s for requests in flight, and
// removes the repo's APIFile. It is idempotent.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.srv.Shutdown(ctx)
		<-s.done
		s.m.unregister()
		if s.cfg.RepoDir != "" {
			os.Remove(filepath.Join(s.cfg.RepoDir, APIFile))
		}
	})
	return err
}

// loadToken reads the control API token from the repo, creating it on first
// use. Without a repo, a fresh token is made.
func loadToken(repo string) (string, error) {
	if repo == "" {
		return newToken(), nil
	}
	path := filepath.Join(repo, TokenFile)
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), os.Chmod(path, 0o600)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("httpapi: api token: %w", err)
	}
	tok := newToken()
	return tok, atomicfile.WriteFile(path, []byte(tok+"\n"), 0o600)
}

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
