package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

// Client talks to a running ipopd over its control socket.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client for the socket at path. It does not connect
// until the first call.
func NewClient(path string) *Client {
	return &Client{path: path, hc: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}},
	}}
}

// Get fetches endpoint (e.g. "/v1/status") into v; raw, when non-nil,
// receives the body exactly as served.
func (c *Client) Get(endpoint string, v any, raw *[]byte) error {
	resp, err := c.hc.Get("http://ipopd" + endpoint)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w at %s", ErrNotRunning, c.path)
		}
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("control: %s: permission denied (run as root or as a member of the socket's group)", c.path)
		}
		return fmt.Errorf("control: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("control: reading %s: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("control: %s: %s: %s", endpoint, resp.Status, body)
	}
	if raw != nil {
		*raw = body
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("control: decoding %s: %w", endpoint, err)
	}
	return nil
}

// Status fetches /v1/status.
func (c *Client) Status() (*Status, []byte, error) {
	var s Status
	var raw []byte
	if err := c.Get("/v1/status", &s, &raw); err != nil {
		return nil, nil, err
	}
	return &s, raw, nil
}
