package webui

import (
	"fmt"
	"html/template"
	"math"
	"sort"
	"strings"

	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/trust"
)

// Graph geometry: this node at the centre, one ring per hop.
const (
	graphSize   = 560
	ringStep    = 105 // at most: more hops share the radius
	nodeRadius  = 9
	selfRadius  = 14
	labelOffset = 15
)

// levelColor is the colour of an edge (and node) of a trust level.
func levelColor(l trust.Level) string {
	switch l {
	case trust.LevelFull:
		return "#2e8b57"
	case trust.LevelLimited:
		return "#d4a017"
	case trust.LevelNone:
		return "#c0392b"
	}
	return "#888888"
}

type graphNode struct {
	id, label string
	level     trust.Level
	hops      int
	x, y      float64
}

// trustGraph draws the web of trust as SVG: this node at the centre, the
// nodes it trusts on rings by hop count, edges from whoever vouched for
// them (the first hop of their path) coloured by level. Everything in it
// is computed here; the IDs and notes are escaped.
func trustGraph(self string, entries []api.TrustEntry) template.HTML {
	c := float64(graphSize) / 2
	byHop := map[int][]api.TrustEntry{}
	maxHop := 0
	for _, e := range entries {
		h := max(e.Hops, 1)
		byHop[h] = append(byHop[h], e)
		maxHop = max(maxHop, h)
	}
	step := float64(ringStep)
	if maxHop > 0 {
		step = min(step, (c-40)/float64(maxHop))
	}
	pos := map[string]*graphNode{self: {id: self, label: "you", x: c, y: c}}
	var nodes []*graphNode
	for h := 1; h <= maxHop; h++ {
		ring := byHop[h]
		sort.Slice(ring, func(i, j int) bool { return ring[i].NodeID < ring[j].NodeID })
		r := float64(h) * step
		for i, e := range ring {
			a := 2*math.Pi*float64(i)/float64(len(ring)) - math.Pi/2 + float64(h-1)*0.4
			label := shortID(e.NodeID)
			if e.Note != "" {
				label = e.Note
			}
			n := &graphNode{id: e.NodeID, label: label, level: e.Level, hops: h, x: c + r*math.Cos(a), y: c + r*math.Sin(a)}
			pos[e.NodeID] = n
			nodes = append(nodes, n)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="graph" viewBox="0 0 %d %d" role="img" aria-label="trust graph: %d nodes">`, graphSize, graphSize, len(nodes))
	b.WriteString(`<title>Web of trust: you at the centre, one ring per hop</title>`)
	for h := 1; h <= maxHop; h++ {
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="%.1f" fill="none" stroke="#d0d7de" stroke-dasharray="4 4"/>`, c, c, float64(h)*step)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle" fill="#8c959f">%d hop%s</text>`, c, c+float64(h)*step+14, h, plural(h))
	}
	for _, e := range entries {
		n := pos[e.NodeID]
		if n == nil {
			continue
		}
		from := pos[self]
		if n.hops > 1 && e.Via != "" && pos[e.Via] != nil {
			from = pos[e.Via]
		}
		dash := ""
		if n.hops > 1 {
			dash = ` stroke-dasharray="6 3"`
		}
		fmt.Fprintf(&b, `<line class="edge edge-%s" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`,
			template.HTMLEscapeString(string(n.level)), from.x, from.y, n.x, n.y, levelColor(n.level), dash)
	}
	fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="%d" fill="#0969da"/>`, c, c, selfRadius)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="12" text-anchor="middle" fill="#0969da" font-weight="bold">you</text>`, c, c+selfRadius+labelOffset)
	for _, n := range nodes {
		fmt.Fprintf(&b, `<g class="node" data-node="%s" data-level="%s" data-hops="%d"><title>%s: %s, %d hop%s</title>`,
			template.HTMLEscapeString(n.id), template.HTMLEscapeString(string(n.level)), n.hops,
			template.HTMLEscapeString(n.id), template.HTMLEscapeString(string(n.level)), n.hops, plural(n.hops))
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="%d" fill="%s"/>`, n.x, n.y, nodeRadius, levelColor(n.level))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle" fill="#24292f">%s</text></g>`,
			n.x, n.y+nodeRadius+labelOffset-2, template.HTMLEscapeString(n.label))
	}
	// Legend.
	y := 18.0
	for _, l := range []trust.Level{trust.LevelFull, trust.LevelLimited, trust.LevelNone} {
		fmt.Fprintf(&b, `<line x1="10" y1="%.1f" x2="34" y2="%.1f" stroke="%s" stroke-width="3"/><text x="40" y="%.1f" font-size="11" fill="#24292f">%s</text>`,
			y, y, levelColor(l), y+4, template.HTMLEscapeString(string(l)))
		y += 16
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
