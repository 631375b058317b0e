package main

import (
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var (
	descNodes   = prometheus.NewDesc("ipop_rendezvous_nodes", "Nodes connected now.", nil, nil)
	descRefused = prometheus.NewDesc("ipop_rendezvous_refused_total",
		"Connections, relays and TURN requests refused, by reason.", []string{"reason"}, nil)
)

// collector reads the servers' counters at scrape time.
type collector struct{ r *rendezvous }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descNodes
	ch <- descRefused
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.r.sig.Stats()
	ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(s.Nodes))
	refused := map[string]uint64{
		"handshake_failed": s.Rejected, "malformed": s.Malformed, "relay_undelivered": s.Dropped - s.Limited,
		"relay_rate_limited": s.Limited, "replaced": s.Replaced, "too_many_connections": s.TooMany,
	}
	if c.r.turn != nil {
		t := c.r.turn.Stats()
		refused["turn_auth"], refused["turn_quota"], refused["turn_peer"] = t.AuthRefused.Load(), t.QuotaRefused.Load(), t.PeerRefused.Load()
	}
	for reason, v := range refused {
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(v), reason)
	}
}

// listenMetrics serves /metrics on addr until the server closes.
func (r *rendezvous) listenMetrics(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collector{r})
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	r.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := r.metrics.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("metrics server stopped", "err", err)
		}
	}()
	r.log.Info("serving metrics", "addr", ln.Addr().String())
	return nil
}
