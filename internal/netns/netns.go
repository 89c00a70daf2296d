// Package netns builds a small Internet inside Linux network namespaces for
// NAT traversal tests: a "public" segment with a server on it, and homes,
// each a host behind its own router doing NAT with iptables. It needs root,
// iproute2 (ip) and iptables.
//
// The layout, for a topology named P (a unique prefix per run):
//
//	P-inet     the public segment: a bridge, nothing else
//	P-srv      the public server (a relay, say): 11.0.0.1/24 on the bridge
//	P-rtrN     home N's router: 11.0.0.(10+N)/24 on the bridge (wan),
//	           192.168.N.1/24 towards the home (lan), NAT from lan to wan
//	P-homeN    home N's host: 192.168.N.2/24, default route via its router
//
// The public segment uses 11.0.0.0/24 so that libp2p takes its addresses for
// public ones (hole punching uses public addresses only); these addresses
// exist only inside the namespaces, which have no route to anywhere else.
// Every link is a veth pair created directly inside its namespaces, and every
// iptables rule lives in a router's namespace, so deleting the namespaces
// removes everything.
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// NAT is how a home's router translates and filters.
type NAT int

const (
	// Cone is Linux MASQUERADE as home routers do it: the source port is
	// kept when free, so a host's port maps to the same public port whatever
	// the destination (endpoint-independent mapping); a stateful firewall
	// drops every unsolicited inbound packet. Hole punching works through it.
	Cone NAT = iota
	// Symmetric is MASQUERADE --random-fully: every new destination gets a
	// new random public port (endpoint-dependent mapping), with the same
	// firewall. Nobody can predict the port, so hole punching fails and only
	// a relay gets through.
	Symmetric
)

func (n NAT) String() string {
	if n == Symmetric {
		return "symmetric"
	}
	return "cone"
}

// Prefix starts the name of every namespace this package creates.
const Prefix = "meshnat"

// PublicNet is the public segment's /24; the server is .1, router N is .10+N.
const PublicNet = "11.0.0"

// ServerIP is the public server's address.
const ServerIP = PublicNet + ".1"

// Home is one home: a host behind a router.
type Home struct {
	NS     string // the host's namespace
	IP     string // the host's private address
	Router string // the router's namespace
	WANIP  string // the router's public address
	NAT    NAT
}

// Topology is a built set of namespaces.
type Topology struct {
	Name   string // the unique prefix of this topology's namespaces
	Inet   string // the public segment's namespace
	Server string // the public server's namespace
	Homes  []Home

	mu  sync.Mutex
	log bytes.Buffer
	nss []string
}

// Check reports what is missing to build a topology: root, ip, iptables and
// network namespace support.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root (run as root, or with CAP_NET_ADMIN and CAP_SYS_ADMIN)")
	}
	var missing []string
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: install iproute2 and iptables (apt-get install -y iproute2 iptables)", strings.Join(missing, " and "))
	}
	return nil
}

// CleanStale deletes the namespaces of earlier runs whose process is gone
// (a run that crashed before its cleanup), killing what still runs in them.
func CleanStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], Prefix+"-") {
			continue
		}
		// meshnat-<pid>-<seq>-<role>
		parts := strings.SplitN(f[0], "-", 4)
		if len(parts) < 4 {
			continue
		}
		pid, err := strconv.Atoi(parts[1])
		if err != nil || processAlive(pid) {
			continue
		}
		deleteNS(f[0])
	}
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// deleteNS kills the processes left in a namespace, then deletes it.
func deleteNS(ns string) {
	if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for i := 0; i < 20; i++ {
		if exec.Command("ip", "netns", "del", ns).Run() == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var seq struct {
	sync.Mutex
	n int
}

// Build creates a public segment with a server and one home per entry of
// homes, behind a router of that kind. On error, whatever was made is
// removed. Call Close when done, even when a test fails.
func Build(ctx context.Context, homes ...NAT) (*Topology, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if len(homes) > 200 {
		return nil, errors.New("netns: at most 200 homes")
	}
	seq.Lock()
	seq.n++
	name := fmt.Sprintf("%s-%d-%d", Prefix, os.Getpid(), seq.n)
	seq.Unlock()
	t := &Topology{Name: name, Inet: name + "-inet", Server: name + "-srv"}
	if err := t.build(ctx, homes); err != nil {
		t.Close()
		return nil, fmt.Errorf("netns: %w\n%s", err, t.Log())
	}
	return t, nil
}

func (t *Topology) build(ctx context.Context, homes []NAT) error {
	if err := t.addNS(ctx, t.Inet); err != nil {
		return err
	}
	// The public segment: a bridge in its own namespace.
	if err := t.run(ctx, t.Inet, "ip", "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if err := t.run(ctx, t.Inet, "ip", "link", "set", "br0", "up"); err != nil {
		return err
	}
	if err := t.addNS(ctx, t.Server); err != nil {
		return err
	}
	if err := t.link(ctx, t.Inet, "srv", t.Server, "eth0"); err != nil {
		return err
	}
	if err := t.plug(ctx, "srv"); err != nil {
		return err
	}
	if err := t.addr(ctx, t.Server, "eth0", ServerIP+"/24"); err != nil {
		return err
	}
	for i, kind := range homes {
		n := i + 1
		h := Home{
			NS:     fmt.Sprintf("%s-home%d", t.Name, n),
			IP:     fmt.Sprintf("192.168.%d.2", n),
			Router: fmt.Sprintf("%s-rtr%d", t.Name, n),
			WANIP:  fmt.Sprintf("%s.%d", PublicNet, 10+n),
			NAT:    kind,
		}
		port := fmt.Sprintf("r%d", n)
		lanIP := fmt.Sprintf("192.168.%d.1", n)
		steps := []func() error{
			func() error { return t.addNS(ctx, h.Router) },
			func() error { return t.addNS(ctx, h.NS) },
			func() error { return t.link(ctx, t.Inet, port, h.Router, "wan") },
			func() error { return t.plug(ctx, port) },
			func() error { return t.addr(ctx, h.Router, "wan", h.WANIP+"/24") },
			func() error { return t.link(ctx, h.Router, "lan", h.NS, "eth0") },
			func() error { return t.addr(ctx, h.Router, "lan", lanIP+"/24") },
			func() error { return t.addr(ctx, h.NS, "eth0", h.IP+"/24") },
			func() error { return t.run(ctx, h.NS, "ip", "route", "add", "default", "via", lanIP) },
			func() error { return t.router(ctx, h.Router, kind) },
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		t.Homes = append(t.Homes, h)
	}
	return nil
}

// router makes ns forward from lan to wan with NAT and a stateful firewall.
func (t *Topology) router(ctx context.Context, ns string, kind NAT) error {
	masq := []string{"iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "wan", "-j", "MASQUERADE"}
	if kind == Symmetric {
		masq = append(masq, "--random-fully")
	}
	cmds := [][]string{
		{"sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"},
		masq,
		// Forward out freely; in, only what belongs to a connection
		// started from inside. No port forwards.
		{"iptables", "-P", "FORWARD", "DROP"},
		{"iptables", "-A", "FORWARD", "-i", "lan", "-o", "wan", "-j", "ACCEPT"},
		{"iptables", "-A", "FORWARD", "-i", "wan", "-o", "lan", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		// The router itself drops unsolicited packets from the Internet
		// rather than answering them with a reset, as home routers do. (A
		// reset would also create a conntrack entry that makes the NAT pick
		// another port for the host's own packet to the same peer.)
		{"iptables", "-A", "INPUT", "-i", "wan", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"iptables", "-A", "INPUT", "-i", "wan", "-j", "DROP"},
	}
	for _, c := range cmds {
		if err := t.run(ctx, ns, c[0], c[1:]...); err != nil {
			return err
		}
	}
	return nil
}

func (t *Topology) addNS(ctx context.Context, ns string) error {
	if err := t.run(ctx, "", "ip", "netns", "add", ns); err != nil {
		return err
	}
	t.mu.Lock()
	t.nss = append(t.nss, ns)
	t.mu.Unlock()
	return t.run(ctx, ns, "ip", "link", "set", "lo", "up")
}

// link creates a veth pair with one end in each namespace.
func (t *Topology) link(ctx context.Context, nsA, ifA, nsB, ifB string) error {
	if err := t.run(ctx, "", "ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB); err != nil {
		return err
	}
	if err := t.run(ctx, nsA, "ip", "link", "set", ifA, "up"); err != nil {
		return err
	}
	return t.run(ctx, nsB, "ip", "link", "set", ifB, "up")
}

// plug attaches a port of the public segment's namespace to its bridge.
func (t *Topology) plug(ctx context.Context, port string) error {
	return t.run(ctx, t.Inet, "ip", "link", "set", port, "master", "br0")
}

func (t *Topology) addr(ctx context.Context, ns, dev, cidr string) error {
	return t.run(ctx, ns, "ip", "addr", "add", cidr, "dev", dev)
}

// run runs a command in namespace ns ("" for the current one), logging it.
func (t *Topology) run(ctx context.Context, ns, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if ns != "" {
		cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	t.mu.Lock()
	fmt.Fprintf(&t.log, "[%s] %s %s\n", ns, name, strings.Join(args, " "))
	if len(out) > 0 {
		t.log.Write(out)
	}
	t.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s %s (in %q): %v: %s", name, strings.Join(args, " "), ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Command returns a command that runs name in namespace ns. It is killed if
// the calling process dies.
func Command(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Dump describes the state of every namespace: addresses, routes, iptables
// rules with their counters and the conntrack entries, for a failure report.
func (t *Topology) Dump() string {
	var b bytes.Buffer
	t.mu.Lock()
	nss := append([]string(nil), t.nss...)
	t.mu.Unlock()
	for _, ns := range nss {
		fmt.Fprintf(&b, "=== %s\n", ns)
		for _, c := range [][]string{{"ip", "-brief", "addr"}, {"ip", "route"}, {"iptables", "-S", "-v"}, {"iptables", "-t", "nat", "-S", "-v"}} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, _ := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, c...)...).CombinedOutput()
			cancel()
			fmt.Fprintf(&b, "$ %s\n%s", strings.Join(c, " "), out)
		}
		if data, err := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/net/nf_conntrack").Output(); err == nil && len(data) > 0 {
			fmt.Fprintf(&b, "$ conntrack\n%s", data)
		}
	}
	return b.String()
}

// Log is the commands run to build the topology, with their output.
func (t *Topology) Log() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.log.String()
}

// Close kills whatever still runs in the topology's namespaces and deletes
// them, which removes their links and iptables rules too. It is safe to call
// more than once.
func (t *Topology) Close() error {
	t.mu.Lock()
	nss := t.nss
	t.nss = nil
	t.mu.Unlock()
	for i := len(nss) - 1; i >= 0; i-- {
		deleteNS(nss[i])
	}
	var left []string
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, ns := range nss {
			if strings.Contains(string(out), ns+" ") || strings.Contains(string(out), ns+"\n") {
				left = append(left, ns)
			}
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("netns: could not delete %s", strings.Join(left, ", "))
	}
	return nil
}
