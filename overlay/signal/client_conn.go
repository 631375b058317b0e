package signal

import (
	"context"
	"sync"
	"time"
)

// serve runs one established connection until it ends or ctx does. It is
// the only caller of the callbacks, on Run's goroutine, which is what
// keeps them serial and in the server's order.
func (c *Client) serve(ctx context.Context, cc *clientConn, welcome *Message) {
	log := c.log.With("server", cc.addr)
	log.Info("connected to rendezvous", "rendezvous", cc.server.String())
	unhook := context.AfterFunc(ctx, cc.stop)
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
func (c *Client) readLoop(cc *clientConn) error {
	self := c.cfg.Identity.ID
	for {
		cc.raw.SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
		m, err := ReadMessage(cc.conn)
		if err != nil {
			return err
		}
		switch m.Type {
		case TypePeers:
			peers := make([]PeerInfo, 0, len(m.Peers))
			for _, p := range m.Peers {
				if p.ID != self {
					peers = append(peers, p)
				}
			}
			if c.cfg.OnPeers != nil {
				c.cfg.OnPeers(peers)
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
