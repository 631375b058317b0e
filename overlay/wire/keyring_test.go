package wire

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
)

func keyringPair(t testing.TB) (client, server *Keyring) {
	root := bytes.Repeat([]byte{7}, RootLen)
	now := time.Unix(1000, 0)
	c, err := NewKeyring(root, true, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewKeyring(root, false, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// TestKeyringRotation: the sender moves through five generations; every
// packet opens, including ones of the previous generation that arrive
// after the first of the next (reordering at the switch), replays are
// refused in every generation, and packets two generations old are gone.
func TestKeyringRotation(t *testing.T) {
	c, s := keyringPair(t)
	var stragglers [][]byte
	var olds [][]byte
	now := time.Unix(1000, 0)
	for gen := range 6 {
		if c.Generation() != uint64(gen) {
			t.Fatalf("generation %d, want %d", c.Generation(), gen)
		}
		for i := range 50 {
			pkt, err := c.Seal(nil, FlagControl, []byte{byte(gen), byte(i)})
			if err != nil {
				t.Fatal(err)
			}
			if i%10 == 9 {
				stragglers = append(stragglers, pkt) // held back past the switch
				continue
			}
			got, flags, err := s.Open(nil, pkt)
			if err != nil || flags != FlagControl || !bytes.Equal(got, []byte{byte(gen), byte(i)}) {
				t.Fatalf("gen %d packet %d: %q %#x %v", gen, i, got, flags, err)
			}
			if _, _, err := s.Open(nil, pkt); !errors.Is(err, ErrReplay) {
				t.Fatalf("gen %d replay: %v", gen, err)
			}
			if gen == 0 && i == 0 {
				olds = append(olds, pkt)
			}
		}
		now = now.Add(time.Minute)
		if !c.RotateIfDue(now) {
			t.Fatal("not rotated after the interval")
		}
		if gen > 0 {
			// The first packet of the new generation is on its way; the
			// previous generation's stragglers still open after it.
			first, _ := c.Seal(nil, 0, []byte("first"))
			if _, _, err := s.Open(nil, first); err != nil {
				t.Fatalf("first of gen %d: %v", gen+1, err)
			}
		}
		for _, p := range stragglers {
			if _, _, err := s.Open(nil, p); err != nil {
				t.Fatalf("straggler of gen %d lost: %v", gen, err)
			}
		}
		stragglers = nil
	}
	if _, _, err := s.Open(nil, olds[0]); err == nil {
		t.Error("a generation-0 packet opened at generation 6")
	}
	if c.RotateIfDue(now) {
		t.Error("rotated twice in one interval")
	}
}

func TestKeyringPacketLimit(t *testing.T) {
	c, s := keyringPair(t)
	c.limit = 10
	for i := range 35 {
		pkt, err := c.Seal(nil, 0, []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Open(nil, pkt); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
	}
	if c.Generation() != 3 {
		t.Errorf("generation %d after 35 packets at 10 each, want 3", c.Generation())
	}
}

// TestKeyringJumps: a sender that moved on twice while none of its
// packets arrived is followed; one too far ahead, or a packet forged to
// claim another generation, opens nothing and moves nothing.
func TestKeyringJumps(t *testing.T) {
	c, s := keyringPair(t)
	now := time.Unix(1000, 0)
	for i := range 2 {
		c.Seal(nil, 0, []byte("lost")) // a generation is left only once used
		c.RotateIfDue(now.Add(time.Duration(i+1) * time.Minute))
	}
	pkt, _ := c.Seal(nil, 0, []byte("gen 2"))
	if got, _, err := s.Open(nil, pkt); err != nil || string(got) != "gen 2" {
		t.Fatalf("two generations ahead: %q %v", got, err)
	}
	forged := append([]byte(nil), pkt...)
	forged[counterOff+2]++ // claims generation 3
	if _, _, err := s.Open(nil, forged); !errors.Is(err, ErrAuth) {
		t.Fatalf("forged generation: %v", err)
	}
	if s.recv.Load().cur.n != 2 {
		t.Errorf("receiver at generation %d after a forgery, want 2", s.recv.Load().cur.n)
	}
	for i := range maxJump + 1 {
		c.Seal(nil, 0, []byte("lost"))
		c.RotateIfDue(now.Add(time.Duration(i+3) * time.Minute))
	}
	far, _ := c.Seal(nil, 0, []byte("too far"))
	if _, _, err := s.Open(nil, far); err == nil {
		t.Errorf("a packet %d generations ahead opened", maxJump+1)
	}
}

// TestKeyringConcurrent: sealers and a rotator at once (run with -race).
func TestKeyringConcurrent(t *testing.T) {
	c, s := keyringPair(t)
	var wg sync.WaitGroup
	pkts := make(chan []byte, 4096)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				p, err := c.Seal(nil, 0, []byte{byte(i)})
				if err != nil {
					t.Error(err)
					return
				}
				pkts <- p
			}
		}()
	}
	now := time.Unix(1000, 0)
	for i := range 3 {
		c.RotateIfDue(now.Add(time.Duration(i+1) * time.Minute))
	}
	wg.Wait()
	close(pkts)
	opened := 0
	for p := range pkts {
		if _, _, err := s.Open(nil, p); err == nil {
			opened++
		}
	}
	// Packets sealed under a generation two behind the newest opened are
	// refused when they come that late; in order, almost all open.
	if opened < 1500 {
		t.Errorf("opened %d of 2000", opened)
	}
}

// TestIndexedKeyringLateReceiver: a receiver that starts (or restarts)
// while its sender is maxJump+12 generations on opens the sender's next
// packet at once, where a chained keyring refuses it for good; packets
// that claim generations far ahead leave no roots behind; an old packet
// replayed to a fresh receiver cannot hold it behind the sender.
func TestIndexedKeyringLateReceiver(t *testing.T) {
	root := bytes.Repeat([]byte{9}, RootLen)
	now := time.Unix(1000, 0)
	for _, indexed := range []bool{false, true} {
		mk := NewKeyring
		if indexed {
			mk = NewIndexedKeyring
		}
		c, err := mk(root, true, time.Minute, now)
		if err != nil {
			t.Fatal(err)
		}
		for i := range maxJump + 12 {
			c.Seal(nil, 0, []byte("before the receiver"))
			c.RotateIfDue(now.Add(time.Duration(i+1) * time.Minute))
		}
		s, _ := mk(root, false, time.Minute, now)
		pkt, _ := c.Seal(nil, 0, []byte("late"))
		got, _, err := s.Open(nil, pkt)
		if !indexed {
			if err == nil {
				t.Fatal("a chained keyring opened a packet 20 generations ahead")
			}
			continue
		}
		if err != nil || string(got) != "late" {
			t.Fatalf("generation %d at a fresh receiver: %q %v", c.Generation(), got, err)
		}
		if _, _, err := s.Open(nil, pkt); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay: %v", err)
		}
		// Generations derive directly: both ends agree on every one.
		for i := range 3 {
			c.Seal(nil, 0, nil)
			c.RotateIfDue(now.Add(time.Duration(maxJump+13+i) * time.Minute))
		}
		next, _ := c.Seal(nil, 0, []byte("next"))
		if got, _, err := s.Open(nil, next); err != nil || string(got) != "next" {
			t.Fatalf("three generations on: %q %v", got, err)
		}
		// A fresh receiver fed packets that claim generations far ahead
		// (a member making them up) derives each and keeps none.
		s2, _ := mk(root, false, time.Minute, now)
		for i := range 50 {
			forged := append([]byte(nil), next...)
			forged[counterOff+1] = byte(i + 1)
			if _, _, err := s2.Open(nil, forged); err == nil {
				t.Fatal("a forged far generation opened")
			}
		}
		if len(s2.roots) != 1 || s2.ahead == nil {
			t.Errorf("%d roots after forged claims, want 1 (ahead %v)", len(s2.roots), s2.ahead != nil)
		}
		if got, _, err := s2.Open(nil, next); err != nil || string(got) != "next" {
			t.Fatalf("after forged claims: %q %v", got, err)
		}
		// An old packet replayed to a fresh receiver first (a member on
		// the path) does not hold it behind: the sender's next packet,
		// many generations on, still opens.
		s3, _ := mk(root, false, time.Minute, now)
		if _, _, err := s3.Open(nil, pkt); err != nil { // "late", generation 20
			t.Fatal(err)
		}
		for i := range maxJump + 4 {
			c.Seal(nil, 0, nil)
			c.RotateIfDue(now.Add(time.Duration(maxJump+20+i) * time.Minute))
		}
		if far, _ := c.Seal(nil, 0, []byte("far")); func() bool { _, _, err := s3.Open(nil, far); return err != nil }() {
			t.Errorf("after an old packet, the sender's packet %d generations on was refused", maxJump+7)
		}
	}
}
