package main

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"slices"
)

// Plot geometry, in SVG user units.
const (
	plotW      = 760
	panelH     = 240
	plotLeft   = 70 // room for the axis labels
	plotTop    = 40 // room for the panel title
	plotBottom = 30 // room for the size labels
)

var pathColor = map[string]string{"native": "#4c78a8", "ipopd": "#f58518", "tinc": "#54a24b"}

// plot draws received packets/s as grouped bars, one panel per load, one
// group per size, one bar per path, each panel scaled to its own maximum.
func plot(o options, rs []*result) []byte {
	var paths []string
	for _, r := range rs {
		if !slices.Contains(paths, r.Path) {
			paths = append(paths, r.Path)
		}
	}
	var b bytes.Buffer
	h := panelH * len(o.loads)
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", plotW, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, h)
	for i, load := range o.loads {
		y0 := float64(i * panelH)
		top, bottom := y0+plotTop, y0+panelH-plotBottom
		max := 1.0
		for _, r := range rs {
			if r.Rate == load {
				max = math.Max(max, r.RecvPPS())
			}
		}
		max = niceCeil(max)
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" font-weight="bold">received packets/s, load %s, %s per cell</text>`+"\n",
			plotLeft, y0+20, html.EscapeString(loadName(load)), o.dur)
		for k := 0; k <= 4; k++ { // grid lines with labels
			y := bottom - (bottom-top)*float64(k)/4
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", plotLeft, plotW-10, y, y)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.0fk</text>`+"\n", plotLeft-6, y+4, max*float64(k)/4/1000)
		}
		groupW := float64(plotW-plotLeft-10) / float64(len(o.sizes))
		barW := groupW * 0.8 / float64(len(paths))
		for j, size := range o.sizes {
			gx := float64(plotLeft) + groupW*float64(j) + groupW*0.1
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%d B</text>`+"\n", gx+groupW*0.4, bottom+18, size)
			for k, p := range paths {
				for _, r := range rs {
					if r.Rate != load || r.Size != size || r.Path != p {
						continue
					}
					bh := (bottom - top) * r.RecvPPS() / max
					x := gx + barW*float64(k)
					fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %d B: %.0f pps, loss %.1f%%</title></rect>`+"\n",
						x, bottom-bh, barW-2, bh, pathColor[p], p, size, r.RecvPPS(), r.Loss())
					fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="10">%.0fk</text>`+"\n", x+barW/2-1, bottom-bh-3, r.RecvPPS()/1000)
				}
			}
		}
		for k, p := range paths { // legend
			x := plotW - 90*(len(paths)-k)
			fmt.Fprintf(&b, `<rect x="%d" y="%.0f" width="12" height="12" fill="%s"/><text x="%d" y="%.0f">%s</text>`+"\n",
				x, y0+9, pathColor[p], x+16, y0+20, p)
		}
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, so grid labels
// come out round.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
