package node

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipopd/ipopd/tap"
)

// tapCollector exports the data plane's TAP counters without touching
// the hot path.
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
	descDrops    = prometheus.NewDesc("ipopd_dropped_total", "Packets, frames and messages from other nodes dropped, by reason (as ipopctl peers shows them).", []string{"reason"}, nil)
	descRouted   = prometheus.NewDesc("ipopd_routed_total", "Routed packets this node sent, forwarded and had delivered, and control messages it flooded.", []string{"kind"}, nil)
	descNodes    = prometheus.NewDesc("ipopd_known_certificates", "Verified certificates of other nodes this node holds.", nil, nil)
)

func (c *tapCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRxFrames, descRxBytes, descTxFrames, descTxBytes, descBatches, descDropped, descInfo, descCertExp, descDrops, descRouted, descNodes} {
		ch <- d
	}
}

func (c *tapCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.n.data.TAPStats()
	for cl := range tap.NumClasses {
		ch <- prometheus.MustNewConstMetric(descRxFrames, prometheus.CounterValue, float64(s.RxFrames[cl]), cl.String())
	}
	ch <- prometheus.MustNewConstMetric(descRxBytes, prometheus.CounterValue, float64(s.RxBytes))
	ch <- prometheus.MustNewConstMetric(descTxFrames, prometheus.CounterValue, float64(s.TxFrames))
	ch <- prometheus.MustNewConstMetric(descTxBytes, prometheus.CounterValue, float64(s.TxBytes))
	ch <- prometheus.MustNewConstMetric(descBatches, prometheus.CounterValue, float64(s.Batches))
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(c.n.dev.Dropped()))
	id := c.n.id
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, id.Name, id.ID.String(), id.Network, c.n.opts.Version)
	ch <- prometheus.MustNewConstMetric(descCertExp, prometheus.GaugeValue, float64(id.NotAfter.Unix()))
	for reason, v := range c.n.drops() {
		ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(v), reason)
	}
	for kind, v := range c.n.data.Routed() {
		ch <- prometheus.MustNewConstMetric(descRouted, prometheus.CounterValue, float64(v), kind)
	}
	ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(c.n.data.Directory().Len()))
}
