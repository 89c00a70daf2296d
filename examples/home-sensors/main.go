// Command home-sensors is the Sovereign IoT story in one process: three
// sensor nodes (garage temperature, basement humidity, breaker power), the
// owner and a tenant, real libp2p hosts on loopback. The sensors encrypt
// every reading under their streams' epoch keys; the owner is granted
// everything, the tenant only the basement's humidity. Each asks named
// sources structured questions ("humidity > 60%", "power anomaly"), and
// the program prints what each can read before and after the basement
// revokes the tenant.
//
//	go run ./examples/home-sensors
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"strings"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// home is the program's nodes.
type home struct {
	garage, basement, breaker, owner, tenant *node.Node
}

func run(ctx context.Context, w io.Writer) error {
	var h home
	var all []*node.Node
	for _, p := range []**node.Node{&h.garage, &h.basement, &h.breaker, &h.owner, &h.tenant} {
		n, err := node.New(ctx, node.Config{
			ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0"},
			DisableMDNS: true, // this example stays on loopback
		})
		if err != nil {
			return err
		}
		defer n.Close()
		*p, all = n, append(all, n)
	}
	sensors := []*node.Node{h.garage, h.basement, h.breaker}
	for _, reader := range []*node.Node{h.owner, h.tenant} {
		for _, s := range sensors {
			if err := reader.Host().Connect(ctx, peer.AddrInfo{ID: s.ID(), Addrs: s.Host().Addrs()}); err != nil {
				return err
			}
		}
	}

	// On the sensors: a stream each, and grants (mesh sensor add, mesh
	// access grant).
	for _, st := range []struct {
		n          *node.Node
		name, unit string
	}{{h.garage, "garage/temperature", "°C"}, {h.basement, "basement/humidity", "%"}, {h.breaker, "breaker/power", "W"}} {
		if _, err := st.n.SensorAdd(ctx, api.StreamOptions{Name: st.name, Unit: st.unit}); err != nil {
			return err
		}
		if _, err := st.n.AccessGrant(ctx, api.GrantOptions{Reader: h.owner.ID().String(), Streams: []string{"*"}}); err != nil {
			return err
		}
	}
	if _, err := h.basement.AccessGrant(ctx, api.GrantOptions{Reader: h.tenant.ID().String(), Streams: []string{"basement/humidity"}}); err != nil {
		return err
	}
	// Readings (mesh sensor push): the breaker's last one is far outside
	// its recent behaviour and is marked anomaly.
	push := func(n *node.Node, stream string, vs ...float64) error {
		for _, v := range vs {
			if _, err := n.SensorPush(ctx, api.PushRequest{Stream: stream, Value: v}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := push(h.garage, "garage/temperature", 3.5, 4.25); err != nil {
		return err
	}
	if err := push(h.basement, "basement/humidity", 58, 64.2); err != nil {
		return err
	}
	if err := push(h.breaker, "breaker/power", 410, 425, 418, 432, 405, 421, 416, 428, 411, 424, 419, 5200); err != nil {
		return err
	}

	// On the readers: local names for the sensors (mesh name set).
	for _, r := range []*node.Node{h.owner, h.tenant} {
		for name, n := range map[string]*node.Node{"garage": h.garage, "basement": h.basement, "breaker": h.breaker} {
			if _, err := r.NameSet(ctx, name, []string{n.ID().String()}); err != nil {
				return err
			}
		}
		if _, err := r.NameSet(ctx, "home", []string{"garage", "basement", "breaker"}); err != nil {
			return err
		}
	}

	questions := []struct{ q, sources string }{
		{"humidity > 60%", "basement"},
		{"temperature last 24h", "garage"},
		{"power anomaly", "home"},
	}
	ask := func(who string, r *node.Node) error {
		for _, q := range questions {
			res, err := r.SensorSearch(ctx, api.SensorSearchRequest{Query: q.q, Sources: q.sources})
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "  %-6s %-24q --sources %-9s %s\n", who, q.q, q.sources, describe(res))
		}
		return nil
	}
	fmt.Fprintln(w, "before the basement revokes the tenant:")
	if err := ask("owner", h.owner); err != nil {
		return err
	}
	if err := ask("tenant", h.tenant); err != nil {
		return err
	}

	// mesh access revoke: a new epoch at once; the next reading is
	// unreadable to the tenant.
	if _, err := h.basement.AccessRevoke(ctx, h.tenant.ID().String(), nil); err != nil {
		return err
	}
	if err := push(h.basement, "basement/humidity", 71.5); err != nil {
		return err
	}
	fmt.Fprintln(w, "after (and a new reading, 71.5 %):")
	if err := ask("owner", h.owner); err != nil {
		return err
	}
	return ask("tenant", h.tenant)
}

// describe is one line: the readings found, or why there are none.
func describe(res *api.SensorSearchResult) string {
	var parts []string
	for _, r := range res.Readings {
		s := strconv.FormatFloat(r.Value, 'g', -1, 64) + " " + r.Unit
		if r.Anomaly {
			s += " (anomaly)"
		}
		parts = append(parts, s)
	}
	codes := map[string]int{}
	for _, s := range res.Sources {
		if s.Code != "" {
			codes[s.Code]++
		}
	}
	for code, n := range codes {
		parts = append(parts, fmt.Sprintf("%s from %d of %d sources", code, n, len(res.Sources)))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}
