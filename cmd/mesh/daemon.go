package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/meshprotocol/mesh/node"
	"github.com/meshprotocol/mesh/node/api"
	"github.com/meshprotocol/mesh/node/httpapi"
	"github.com/meshprotocol/mesh/protocol"
)

// Daemon defaults.
const (
	defaultAPI = "127.0.0.1:8765"
)

// defaultListen are the daemon's libp2p listen addresses: TCP and QUIC on
// 4001, and WebSocket on 4002, so that a tunnel or a reverse proxy
// terminating TLS can forward wss to it (--announce).
var defaultListen = []string{
	"/ip4/0.0.0.0/tcp/4001",
	"/ip4/0.0.0.0/udp/4001/quic-v1",
	"/ip4/0.0.0.0/tcp/4002/ws",
}

func initCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create the repo and the node's Ed25519 identity",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			key, created, err := node.LoadOrCreateKey(g.repo)
			if err != nil {
				return err
			}
			if err := WriteRepoConfig(g.repo, RepoConfig{}); err != nil {
				return err
			}
			id, err := nodeIDOf(key)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]any{"repo": g.repo, "nodeId": id, "created": created})
			}
			if created {
				g.printf("initialized MESH repo at %s\nnode ID: %s\n", g.repo, id)
			} else {
				g.printf("MESH repo at %s already exists\nnode ID: %s\n", g.repo, id)
			}
			return nil
		},
	}
}

func daemonCmd(g *globals) *cobra.Command {
	var (
		listen    []string
		bootstrap []string
		topics    []string
		noMDNS    bool
		apiOpen   bool
		noUI      bool
		metrics   string
		verbose   bool
		applies   []func(*cobra.Command, *node.Config) error
		// cfgProfile is config.json's "profile", read as the daemon starts.
		cfgProfile string
	)
	c := &cobra.Command{
		Use:   "daemon",
		Short: "Run a MESH node on the repo (created on first start)",
		Long: `Run a MESH node on the repo, creating the repo and identity on first start.

The AMP REST binding and the control API listen on --api (default ` + defaultAPI + `,
loopback only) and need the bearer token in the repo's api.token file (the CLI and
mesh mcp read it themselves); --api-open serves /amp/ without it, for single-user
machines. libp2p listens on every --listen address.`,
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if _, _, err := node.LoadOrCreateKey(g.repo); err != nil {
				return err
			}
			if err := WriteRepoConfig(g.repo, RepoConfig{}); err != nil {
				return err
			}
			rc, err := LoadRepoConfig(g.repo)
			if err != nil {
				return err
			}
			cfgProfile = rc.Profile
			api := g.api
			if api == "" {
				api = rc.API
			}
			if api == "" {
				api = defaultAPI
			}
			if !c.Flags().Changed("listen") && len(rc.Listen) > 0 {
				listen = rc.Listen
			}
			cfg := node.Config{
				RepoDir:     g.repo,
				ListenAddrs: listen,
				APIAddr:     api,
				Logger:      log,
				Bootstrap:   append(rc.Bootstrap, bootstrap...),
				Topics:      append(rc.Topics, topics...),
				DisableMDNS: noMDNS || (rc.MDNS != nil && !*rc.MDNS),
				NAT:         rc.NAT,
				DHT:         rc.DHT,
				Directory:   rc.Directory,
				APIOpen:     apiOpen,
				DisableUI:   noUI,
			}
			for _, apply := range applies {
				if err := apply(c, &cfg); err != nil {
					return usageError{err}
				}
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			cfg.Registerer, cfg.Gatherer = reg, reg
			if metrics != "" {
				stopMetrics, err := serveMetrics(metrics, reg, log)
				if err != nil {
					return err
				}
				defer stopMetrics()
			}
			n, err := node.New(ctx, cfg)
			if errors.Is(err, node.ErrNotListening) {
				return fmt.Errorf("%w\nchoose other addresses with --listen (for example --listen /ip4/0.0.0.0/tcp/4101 --listen /ip4/0.0.0.0/udp/4101/quic-v1), or stop what holds the port", err)
			}
			if err != nil {
				return err
			}
			info, _ := n.Info(ctx)
			if g.json {
				_ = g.printJSON(info)
			} else {
				printBanner(g, info, cfg)
			}
			<-ctx.Done()
			log.Info("shutting down")
			return n.Close()
		},
	}
	c.Flags().StringArrayVar(&listen, "listen", defaultListen, "libp2p listen multiaddr (repeatable)")
	c.Flags().StringArrayVar(&bootstrap, "bootstrap", nil, "peer multiaddr (/p2p/<id>) to connect to and keep (repeatable; also config.json)")
	c.Flags().StringArrayVar(&topics, "topic", nil, "MESH topic to follow (repeatable; also config.json and mesh follow)")
	c.Flags().BoolVar(&noMDNS, "no-mdns", false, "do not discover MESH nodes on the LAN by multicast DNS")
	c.Flags().BoolVar(&apiOpen, "api-open", false, "serve the AMP REST binding (/amp/) to every local user without the repo's api.token (single-user machines only)")
	c.Flags().BoolVar(&noUI, "no-ui", false, "do not serve the web UI on the API address (mesh ui)")
	c.Flags().StringVar(&metrics, "metrics", "", "also serve Prometheus metrics at http://ADDR/metrics, without the token (the API serves them at /metrics with it)")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "debug logging")
	// The subsystems' flags (nat.go, dht.go, directoryrole.go): each adds
	// its flags and returns what applies them on top of config.json's.
	applies = append(applies, dhtFlags(c), directoryDaemonFlags(c), natFlags(c), profileFlags(c, &cfgProfile), loraFlags(c))
	return c
}

// printBanner tells what the daemon serves: every HTTP API, every libp2p
// socket and the addresses peers may dial, and what it does on the LAN.
func printBanner(g *globals, info *api.Info, cfg node.Config) {
	g.printf("MESH node %s\n", info.NodeID)
	g.printf("repo:          %s\n", g.repo)
	if info.API != "" {
		g.printf("AMP API:       %s/amp (bearer token in %s)\n", info.API, filepath.Join(g.repo, httpapi.TokenFile))
		g.printf("control API:   %s/api/v1\n", info.API)
	}
	if info.API != "" {
		g.printf("web UI:        %s/ (mesh ui prints a login link)\n", info.API)
		g.printf("metrics:       %s/metrics (Prometheus, bearer token)\n", info.API)
	}
	if info.PublicAPI != "" {
		g.printf("public API:    %s (directory)\n", info.PublicAPI)
	}
	var listen []string
	for _, a := range info.Listen {
		if a != "/p2p-circuit" { // the relay transport's: not a socket
			listen = append(listen, a)
		}
	}
	g.printf("libp2p listen: %s\n", strings.Join(listen, ", "))
	g.printf("dial me at:    %s\n", plural(len(info.Addrs), "address", "addresses"))
	for _, a := range info.Addrs {
		g.printf("  %s\n", a)
	}
	var lan []string
	if !cfg.DisableMDNS {
		lan = append(lan, "mDNS discovery on (--no-mdns)")
	}
	if pm := cfg.NAT.PortMap; pm != nil && *pm {
		lan = append(lan, "UPnP/NAT-PMP port mapping on (--no-portmap)")
	}
	if len(lan) > 0 {
		g.printf("LAN:           %s\n", strings.Join(lan, "; "))
	}
	if l := cfg.Lora; len(l.Radios) > 0 || l.UDP != "" {
		var on []string
		on = append(on, l.Radios...)
		if l.UDP != "" {
			on = append(on, "udp://"+l.UDP)
		}
		g.printf("LoRa gateway:  %s\n", strings.Join(on, ", "))
	}
	g.printf("daemon ready\n")
}

func idCmd(g *globals) *cobra.Command {
	var quiet bool
	c := &cobra.Command{
		Use:   "id",
		Short: "Show the node ID, fingerprint and addresses",
		Args:  args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			return show(g, c, func(b api.API) (*api.Info, error) { return b.Info(c.Context()) }, func(info *api.Info) {
				if quiet {
					g.printf("%s\n", info.NodeID)
					return
				}
				g.printf("node ID:     %s\nfingerprint: %s\n", info.NodeID, info.Fingerprint)
				if len(info.Addrs) == 0 {
					g.printf("addresses:   none (the daemon is not running)\n")
				} else {
					g.printf("addresses:\n  %s\n", strings.Join(info.Addrs, "\n  "))
				}
			})
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "print the node ID only")
	return c
}

func nodeIDOf(key interface{ Raw() ([]byte, error) }) (string, error) {
	raw, err := key.Raw()
	if err != nil {
		return "", err
	}
	if len(raw) != 64 {
		return "", fmt.Errorf("identity key is not Ed25519")
	}
	return protocol.NodeID(raw[32:])
}

// serveMetrics serves reg's metrics at http://addr/metrics until the
// returned function is called.
func serveMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
