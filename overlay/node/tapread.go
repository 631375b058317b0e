package node

// The TAP read path.
//
//	TAP ──Read(batch)──► classify each frame ──► count
//	                      (IGMP/MLD → querier, ARP/NDP → neighbour table,
//	                       data → topology: later issues plug in here)
//
//	                     ──► links: Forward(batch) (overlay.Manager)
//
// One reader goroutine owns the batch buffers below; they are borrowed by
// each stage only until the next Read (the querier gets copies).

import (
	"errors"
	"net"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipopd/ipopd/tap"
)

// batchSize frames per Read: large enough to amortise a wake-up, small
// enough that a batch of MTU-sized buffers stays in cache.
const batchSize = 64

// countAtomic is a hot counter: one writer, lock-free readers.
type countAtomic = atomic.Uint64

// tapStats are hot counters, bumped once per frame by the reader goroutine and
// read by the control API and metrics; atomics, so no lock is shared.
type tapStats struct {
	rxFrames [tap.NumClasses]countAtomic
	rxBytes  countAtomic
	txFrames countAtomic
	txBytes  countAtomic
	batches  countAtomic
}

func (n *Node) readTAP() error {
	size := tap.MaxFrame(n.dev.MTU())
	bufs := make([][]byte, batchSize)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	sizes := make([]int, batchSize)
	frames := make([][]byte, 0, batchSize)
	for {
		k, err := n.dev.Read(bufs, sizes)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		n.stats.batches.Add(1)
		frames = frames[:0]
		for i := range k {
			frame := bufs[i][:sizes[i]]
			c := tap.Classify(frame)
			n.stats.rxFrames[c].Add(1)
			n.stats.rxBytes.Add(uint64(len(frame)))
			if (c == tap.ClassARP || c == tap.ClassNDP) && !n.snoopLocal(frame) {
				continue // answered here, or a request for a local host
			}
			frames = append(frames, frame)
			if c == tap.ClassIGMP || c == tap.ClassMLD {
				n.log.Debug("tap: membership report or query", "class", c.String(), "len", len(frame))
				n.mcast.input(frame)
			}
		}
		n.links.mgr.Forward(frames)
	}
}

// tapCollector exports tapStats without touching them on the hot path.
type tapCollector struct{ n *Node }

var (
	descRxFrames = prometheus.NewDesc("ipopd_tap_rx_frames_total", "Frames read from the TAP, by class.", []string{"class"}, nil)
	descRxBytes  = prometheus.NewDesc("ipopd_tap_rx_bytes_total", "Bytes of frames read from the TAP.", nil, nil)
	descTxFrames = prometheus.NewDesc("ipopd_tap_tx_frames_total", "Frames written to the TAP.", nil, nil)
	descTxBytes  = prometheus.NewDesc("ipopd_tap_tx_bytes_total", "Bytes of frames written to the TAP.", nil, nil)
	descBatches  = prometheus.NewDesc("ipopd_tap_read_batches_total", "TAP reads (each returns a batch of frames).", nil, nil)
	descDropped  = prometheus.NewDesc("ipopd_tap_rx_dropped_total", "Frames dropped by the TAP reader (longer than MTU).", nil, nil)
	descInfo     = prometheus.NewDesc("ipopd_info", "Node identity; value is always 1.", []string{"name", "node_id", "network", "version"}, nil)
	descCertExp  = prometheus.NewDesc("ipopd_cert_expiry_timestamp_seconds", "When the node certificate expires.", nil, nil)
)

func (c *tapCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRxFrames, descRxBytes, descTxFrames, descTxBytes, descBatches, descDropped, descInfo, descCertExp} {
		ch <- d
	}
}

func (c *tapCollector) Collect(ch chan<- prometheus.Metric) {
	s := &c.n.stats
	for cl := range tap.NumClasses {
		ch <- prometheus.MustNewConstMetric(descRxFrames, prometheus.CounterValue, float64(s.rxFrames[cl].Load()), cl.String())
	}
	ch <- prometheus.MustNewConstMetric(descRxBytes, prometheus.CounterValue, float64(s.rxBytes.Load()))
	ch <- prometheus.MustNewConstMetric(descTxFrames, prometheus.CounterValue, float64(s.txFrames.Load()))
	ch <- prometheus.MustNewConstMetric(descTxBytes, prometheus.CounterValue, float64(s.txBytes.Load()))
	ch <- prometheus.MustNewConstMetric(descBatches, prometheus.CounterValue, float64(s.batches.Load()))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(c.n.dev.Dropped()))
	id := c.n.id
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, id.Name, id.ID.String(), id.Network, c.n.opts.Version)
	ch <- prometheus.MustNewConstMetric(descCertExp, prometheus.GaugeValue, float64(id.NotAfter.Unix()))
}
