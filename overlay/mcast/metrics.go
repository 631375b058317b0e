package mcast

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipopd/ipopd/igmp"
)

// Collector exports the plane to Prometheus. The querier lives on the
// plane's loop, so a scrape asks the loop (scrapes are rare); the
// per-group counters are atomics read directly.
func (mc *Plane) Collector() prometheus.Collector { return collector{mc} }

type collector struct{ mc *Plane }

var (
	descQuerier   = prometheus.NewDesc("ipopd_querier", "1 when this node is the IGMP (family 4) or MLD (family 6) querier of its TAP.", []string{"family"}, nil)
	descLocal     = prometheus.NewDesc("ipopd_mcast_local_groups", "Groups with local members on the TAP (link-scope groups included).", nil, nil)
	descRemote    = prometheus.NewDesc("ipopd_mcast_remote_subscriptions", "Remote (group, node) subscriptions in the multicast table.", nil, nil)
	descFwd       = prometheus.NewDesc("ipopd_mcast_forwarded_frames_total", "Multicast frames sent to subscribed nodes (one per subscriber).", nil, nil)
	descFwdBytes  = prometheus.NewDesc("ipopd_mcast_forwarded_bytes_total", "Bytes of multicast frames sent to subscribed nodes.", nil, nil)
	descDlv       = prometheus.NewDesc("ipopd_mcast_delivered_frames_total", "Multicast frames from the overlay written to the TAP.", nil, nil)
	descDlvBytes  = prometheus.NewDesc("ipopd_mcast_delivered_bytes_total", "Bytes of multicast frames from the overlay written to the TAP.", nil, nil)
	descReports   = prometheus.NewDesc("ipopd_membership_reports_total", "IGMP/MLD membership reports heard on the TAP.", []string{"proto"}, nil)
	descQueries   = prometheus.NewDesc("ipopd_queries_sent_total", "IGMP/MLD queries sent on the TAP.", []string{"proto"}, nil)
	descIgmpDrops = prometheus.NewDesc("ipopd_membership_frames_dropped_total", "IGMP/MLD frames the querier's queue had no room for.", nil, nil)
	descLimits    = prometheus.NewDesc("ipopd_mcast_local_limit_total", "Local memberships over a bound: reports the querier's table had no room for (querier_full), groups not advertised (groups_refused, beyond 16384 groups or 65536 groups and sources), filters advertised as all sources (filters_widened).", []string{"what"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQuerier, descLocal, descRemote, descFwd, descFwdBytes, descDlv, descDlvBytes, descReports, descQueries, descIgmpDrops, descLimits} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	var qs []igmp.QuerierState
	var stats igmp.Stats
	if !c.mc.loop.Call(func() { qs, stats = c.mc.router.Queriers(time.Now()), c.mc.router.Stats() }) {
		return // the loop is not running (stopping): no figures
	}
	for _, q := range qs {
		v := 0.0
		if q.Querier {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descQuerier, prometheus.GaugeValue, v, map[int]string{4: "4", 6: "6"}[q.Family])
	}
	sum := func(a [4]uint64) float64 { return float64(a[0] + a[1] + a[2] + a[3]) }
	ch <- prometheus.MustNewConstMetric(descReports, prometheus.CounterValue, sum(stats.IGMP.Received.Reports), "igmp")
	ch <- prometheus.MustNewConstMetric(descReports, prometheus.CounterValue, sum(stats.MLD.Received.Reports), "mld")
	ch <- prometheus.MustNewConstMetric(descQueries, prometheus.CounterValue, sum(stats.IGMP.Sent.Queries), "igmp")
	ch <- prometheus.MustNewConstMetric(descQueries, prometheus.CounterValue, sum(stats.MLD.Sent.Queries), "mld")
	ch <- prometheus.MustNewConstMetric(descIgmpDrops, prometheus.CounterValue, float64(c.mc.drops.Load()))
	ch <- prometheus.MustNewConstMetric(descLimits, prometheus.CounterValue, float64(c.mc.igmpLimit.Load()), "querier_full")
	ch <- prometheus.MustNewConstMetric(descLimits, prometheus.CounterValue, float64(c.mc.localRefused.Load()), "groups_refused")
	ch <- prometheus.MustNewConstMetric(descLimits, prometheus.CounterValue, float64(c.mc.localWidened.Load()), "filters_widened")

	st := c.mc.state.Load()
	ch <- prometheus.MustNewConstMetric(descLocal, prometheus.GaugeValue, float64(len(st.local)))
	subs := 0
	for _, g := range st.view.Groups() {
		subs += len(st.view.Nodes(g))
	}
	ch <- prometheus.MustNewConstMetric(descRemote, prometheus.GaugeValue, float64(subs))
	var fwd, fwdB, dlv, dlvB uint64
	for _, g := range st.stats.groups() {
		gc := st.stats.get(g)
		fwd, fwdB, dlv, dlvB = fwd+gc.fwdFrames.Load(), fwdB+gc.fwdBytes.Load(), dlv+gc.dlvFrames.Load(), dlvB+gc.dlvBytes.Load()
	}
	ch <- prometheus.MustNewConstMetric(descFwd, prometheus.CounterValue, float64(fwd))
	ch <- prometheus.MustNewConstMetric(descFwdBytes, prometheus.CounterValue, float64(fwdB))
	ch <- prometheus.MustNewConstMetric(descDlv, prometheus.CounterValue, float64(dlv))
	ch <- prometheus.MustNewConstMetric(descDlvBytes, prometheus.CounterValue, float64(dlvB))
}
