package signal

import (
	"context"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/ipopd/ipopd/overlay/nodeid"
)

// maxPresent bounds the presence list a node keeps (the server is
// authenticated, but a bound is cheap).
const maxPresent = 100_000

// serve runs one established connection until it ends or ctx does. It is
// the only caller of the callbacks, on Run's goroutine, which is what
// keeps them serial and in the server's order.
func (c *Client) serve(ctx context.Context, cc *clientConn, welcome *Message) {
	log := c.log.With("server", cc.addr)
	log.Info("connected to rendezvous", "rendezvous", cc.server.String())
	unhook := context.AfterFunc(ctx, cc.stop)
	expire := time.AfterFunc(time.Until(cc.notAfter), func() {
		log.Warn("rendezvous certificate expired; disconnecting")
		cc.stop()
	})
	defer expire.Stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.writeLoop(cc)
	}()

	// Publish the connection before OnState(true), so a callback may Send.
	c.mu.Lock()
	c.cur = cc
	c.mu.Unlock()
	if c.cfg.OnState != nil {
		c.cfg.OnState(true)
	}
	if c.cfg.OnWelcome != nil {
		c.cfg.OnWelcome(welcome.STUN, welcome.TURN)
	}
	err := c.readLoop(cc)

	c.mu.Lock()
	c.cur = nil
	c.mu.Unlock()
	cc.stop()
	unhook()
	wg.Wait()
	if ctx.Err() == nil {
		log.Warn("lost rendezvous; reconnecting", "err", err)
	}
	if c.cfg.OnState != nil {
		c.cfg.OnState(false)
	}
}

// readLoop dispatches messages until the connection fails. The server pings
// every PingInterval, so a read deadline of IdleTimeout finds a server that
// vanished without closing (power loss, NAT mapping gone).
func (c *Client) readLoop(cc *clientConn) error { return c.readLoopOn(cc, cc.conn) }

// readLoopOn is readLoop reading from r (tests play frames into it).
func (c *Client) readLoopOn(cc *clientConn, r io.Reader) error {
	self := c.cfg.Identity.ID
	// The presence list as the server said it: a full list in parts, then
	// changes; OnPeers gets the whole of it at the end of each.
	present := map[nodeid.ID]PeerInfo{}
	publish := func() {
		if c.cfg.OnPeers == nil {
			return
		}
		peers := make([]PeerInfo, 0, len(present))
		for _, p := range present {
			peers = append(peers, p)
		}
		slices.SortFunc(peers, func(a, b PeerInfo) int { return a.ID.Compare(b.ID) })
		c.cfg.OnPeers(peers)
	}
	for {
		cc.raw.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
		m, err := readMessage(r, maxRevokedSize)
		if err != nil {
			return err
		}
		switch m.Type {
		case TypePeers, TypePresence:
			if m.Reset {
				clear(present)
			}
			for _, p := range m.Peers {
				if p.ID != self && !p.ID.IsZero() && len(present) < maxPresent {
					present[p.ID] = p
				}
			}
			for _, id := range m.Left {
				delete(present, id)
			}
			if !m.More {
				publish()
			}
		case TypeRevoked:
			if c.cfg.OnRevoked != nil && m.Revoked != "" {
				c.cfg.OnRevoked([]byte(m.Revoked))
			}
		case TypeRelay:
			if c.cfg.OnRelay != nil && !m.From.IsZero() {
				c.cfg.OnRelay(m.From, m.Payload)
			}
		case TypePing:
			select {
			case cc.out <- pongFrame:
			default: // a full queue means the server will hear from us anyway
			}
		case TypeError:
			c.log.Debug("rendezvous dropped a relay", "to", m.To.Short(), "reason", m.Error)
		case TypePong, TypeWelcome:
		default:
			c.log.Debug("ignoring message", "type", m.Type)
		}
	}
}

// writeLoop writes queued frames until the connection is stopped; a failed
// write stops it, which ends readLoop too.
func (c *Client) writeLoop(cc *clientConn) {
	defer cc.stop()
	for {
		select {
		case <-cc.done:
			return
		case frame := <-cc.out:
			cc.raw.SetWriteDeadline(time.Now().Add(writeTimeout))
			if _, err := cc.conn.Write(frame); err != nil {
				return
			}
		}
	}
}
