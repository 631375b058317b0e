package taptest

import (
	"bytes"
	"errors"
	"net"
	"testing"
)

func TestBatchReadWriteClose(t *testing.T) {
	d := New("fake0", 1400, net.HardwareAddr{2, 0, 0, 0, 0, 1}, 8)
	for i := range 3 {
		d.Inject(bytes.Repeat([]byte{byte(i)}, 60))
	}
	d.Inject(make([]byte, 2000)) // too long for the buffers below: dropped
	bufs := [][]byte{make([]byte, 1500), make([]byte, 1500), make([]byte, 1500), make([]byte, 1500), make([]byte, 1500)}
	sizes := make([]int, len(bufs))
	n, err := d.Read(bufs, sizes)
	if err != nil || n != 3 {
		t.Fatalf("Read = %d, %v; want 3 frames", n, err)
	}
	for i := range n {
		if sizes[i] != 60 || bufs[i][0] != byte(i) {
			t.Errorf("frame %d: size %d first byte %d", i, sizes[i], bufs[i][0])
		}
	}
	if d.Dropped() != 1 {
		t.Errorf("Dropped = %d, want 1", d.Dropped())
	}
	if n, err := d.Write([][]byte{{1, 2, 3}}); n != 1 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := <-d.Written(); !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Errorf("Written = %v", got)
	}
	done := make(chan error)
	go func() { _, err := d.Read(bufs, sizes); done <- err }()
	d.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v, want net.ErrClosed", err)
	}
	if d.Inject([]byte{1}) {
		t.Error("Inject after Close succeeded")
	}
}
