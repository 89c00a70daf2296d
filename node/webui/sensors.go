package webui

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshprotocol/mesh/node/api"
)

// ---- Sensors ------------------------------------------------------------------

// Chart geometry.
const (
	chartW, chartH = 560, 150
	chartPad       = 30 // left margin for the value labels
	chartWindow    = 24 * time.Hour
)

type sensorsData struct {
	Streams []streamRow
	Grants  []api.Grant
}

type streamRow struct {
	api.Stream
	Chart  template.HTML
	Points int
	Err    string
}

// sensorsPage shows this node's streams, each with a chart of its last
// day of readings (asked of the node itself, decrypted and verified as any
// reader's), and the grants.
func (s *Server) sensorsPage(r *http.Request, v *view) (string, error) {
	ctx := r.Context()
	v.Title, v.Active = "Sensors", "sensors"
	streams, err := s.api.SensorList(ctx)
	if err != nil {
		return "", err
	}
	d := &sensorsData{}
	now := time.Now()
	for _, st := range streams {
		row := streamRow{Stream: st}
		res, err := s.api.SensorSearch(ctx, api.SensorSearchRequest{Query: "last 24h", Sources: v.Self, Streams: []string{st.Name}, Limit: 1000})
		if err != nil {
			row.Err = err.Error()
		} else {
			row.Chart, row.Points = streamChart(res.Readings, st.Unit, now)
		}
		d.Streams = append(d.Streams, row)
	}
	if d.Grants, err = s.api.AccessList(ctx); err != nil {
		return "", err
	}
	v.Data = d
	return "sensors", nil
}

func (s *Server) doAccessGrant(r *http.Request) (string, string, error) {
	g := api.GrantOptions{Reader: strings.TrimSpace(r.PostFormValue("reader")), Streams: splitList(r.PostFormValue("streams"))}
	if u := strings.TrimSpace(r.PostFormValue("until")); u != "" {
		t, err := time.Parse("2006-01-02", u)
		if err != nil {
			return "/sensors", "", fmt.Errorf("until %q: want a date, 2027-06-01", u)
		}
		g.Until = t.UnixMilli()
	}
	res, err := s.api.AccessGrant(r.Context(), g)
	if err != nil {
		return "/sensors", "", err
	}
	return "/sensors", "granted " + shortID(res.Reader) + " " + strings.Join(res.Streams, ", "), nil
}

func (s *Server) doAccessRevoke(r *http.Request) (string, string, error) {
	reader := strings.TrimSpace(r.PostFormValue("reader"))
	res, err := s.api.AccessRevoke(r.Context(), reader, nil)
	if err != nil {
		return "/sensors", "", err
	}
	return "/sensors", "revoked " + shortID(reader) + ": new epochs for " + strings.Join(res.Streams, ", "), nil
}

// streamChart draws a stream's readings of the last day as SVG: a line
// through the values in time order, anomalies as red dots, the range and
// the last value labelled. Everything in it is computed here; the unit is
// escaped.
func streamChart(rs []api.Reading, unit string, now time.Time) (template.HTML, int) {
	from := now.Add(-chartWindow).UnixMilli()
	var pts []api.Reading
	for _, r := range rs {
		if r.At >= from && r.At <= now.UnixMilli() && !math.IsNaN(r.Value) && !math.IsInf(r.Value, 0) {
			pts = append(pts, r)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="readings of the last 24 hours">`, chartW, chartH, chartW, chartH)
	fmt.Fprintf(&b, `<rect x="%d" y="0" width="%d" height="%d" fill="none" stroke="#ccc"/>`, chartPad, chartW-chartPad, chartH)
	if len(pts) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#888" text-anchor="middle">no readings in the last 24 h</text></svg>`, (chartW+chartPad)/2, chartH/2)
		return template.HTML(b.String()), 0
	}
	slices.SortFunc(pts, func(a, b api.Reading) int { return int(a.At - b.At) })
	lo, hi := pts[0].Value, pts[0].Value
	for _, p := range pts {
		lo, hi = math.Min(lo, p.Value), math.Max(hi, p.Value)
	}
	if hi == lo {
		lo, hi = lo-1, hi+1
	}
	x := func(at int64) float64 {
		return chartPad + float64(at-from)/float64(chartWindow.Milliseconds())*float64(chartW-chartPad)
	}
	y := func(v float64) float64 { return 8 + (hi-v)/(hi-lo)*float64(chartH-16) }
	var line []string
	for _, p := range pts {
		line = append(line, strconv.FormatFloat(x(p.At), 'f', 1, 64)+","+strconv.FormatFloat(y(p.Value), 'f', 1, 64))
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#2e6da4" stroke-width="1.5" points="%s"/>`, strings.Join(line, " "))
	for _, p := range pts {
		if p.Anomaly {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="#c0392b"><title>anomaly: %s</title></circle>`, x(p.At), y(p.Value), template.HTMLEscapeString(formatValue(p.Value, unit)))
		}
	}
	esc := template.HTMLEscapeString
	fmt.Fprintf(&b, `<text x="2" y="12" font-size="10" fill="#555">%s</text>`, esc(formatValue(hi, "")))
	fmt.Fprintf(&b, `<text x="2" y="%d" font-size="10" fill="#555">%s</text>`, chartH-4, esc(formatValue(lo, "")))
	last := pts[len(pts)-1]
	fmt.Fprintf(&b, `<text x="%d" y="12" font-size="11" text-anchor="end" fill="#222">last %s, %s</text>`, chartW-4, esc(formatValue(last.Value, unit)), esc(ago(last.At)))
	b.WriteString(`</svg>`)
	return template.HTML(b.String()), len(pts)
}

func formatValue(v float64, unit string) string {
	s := strconv.FormatFloat(v, 'g', 6, 64)
	if unit != "" {
		s += " " + unit
	}
	return s
}
