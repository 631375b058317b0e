package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Server serves the control API on a unix socket. Handlers are plain
// functions returning a JSON-marshalable value, so the node keeps its state
// where it lives and the server only renders it.
type Server struct {
	path string
	ln   net.Listener
	mux  *http.ServeMux
	srv  *http.Server
	log  *slog.Logger
}

// Listen creates the socket at path (and its directory), removing a stale
// socket left by a crashed ipopd but refusing to take over a live one.
func Listen(path string, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("control: creating %s: %w", filepath.Dir(path), err)
	}
	if _, err := os.Lstat(path); err == nil {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: %s", ErrInUse, path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control: removing stale socket %s: %w", path, err)
		}
		log.Info("removed stale control socket", "path", path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	s := &Server{path: path, ln: ln, mux: http.NewServeMux(), log: log}
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second}
	return s, nil
}

// Handle registers a GET endpoint whose body is get()'s value as JSON.
func (s *Server) Handle(path string, get func() (any, error)) {
	s.HandleQuery(path, func(url.Values) (any, error) { return get() })
}

// ErrBadRequest, wrapped by a HandleQuery function's error, answers 400
// (the query is wrong) rather than 500.
var ErrBadRequest = errors.New("bad request")

// HandleQuery is Handle for an endpoint that takes query parameters.
func (s *Server) HandleQuery(path string, get func(q url.Values) (any, error)) {
	s.mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
		v, err := get(r.URL.Query())
		if errors.Is(err, ErrBadRequest) {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			s.log.Debug("control: writing response", "path", path, "err", err)
		}
	})
}

// Serve blocks until Close; it returns nil after Close.
func (s *Server) Serve() error {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("control: %w", err)
	}
	return nil
}

// Close stops serving and removes the socket file.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}
