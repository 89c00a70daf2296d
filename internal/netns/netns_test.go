package netns

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the probe run inside the namespaces:
// NETNS_PROBE=serve:ADDR echoes to each TCP client the address it sees the
// client connect from; NETNS_PROBE=dial:LOCALPORT:ADDR connects from that
// local port and prints what the server answered.
func TestMain(m *testing.M) {
	if p := os.Getenv("NETNS_PROBE"); p != "" {
		os.Exit(probe(p))
	}
	os.Exit(m.Run())
}

func probe(spec string) int {
	parts := strings.SplitN(spec, ":", 2)
	switch parts[0] {
	case "serve":
		l, err := net.Listen("tcp", parts[1])
		if err != nil {
			fmt.Println(err)
			return 1
		}
		fmt.Println("listening")
		for {
			c, err := l.Accept()
			if err != nil {
				return 1
			}
			fmt.Fprintln(c, c.RemoteAddr().String())
			c.Close()
		}
	case "dial":
		rest := strings.SplitN(parts[1], ":", 2)
		d := net.Dialer{Timeout: 3 * time.Second}
		if rest[0] != "0" {
			d.LocalAddr = &net.TCPAddr{Port: atoi(rest[0])}
		}
		c, err := d.Dial("tcp", rest[1])
		if err != nil {
			fmt.Println("error:", err)
			return 0
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Print(line)
		return 0
	}
	return 2
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

// need fails under CI and skips elsewhere when the topology cannot be built.
func need(t *testing.T) {
	t.Helper()
	if err := Check(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the NAT tests must run in CI: %v", err)
		}
		t.Skipf("skipping the network namespace test: %v", err)
	}
}

// TestTopology checks the NAT itself: homes reach the server from their
// router's public address; a cone router keeps the host's port, a symmetric
// one does not; and nothing reaches a home unsolicited.
func TestTopology(t *testing.T) {
	need(t)
	CleanStale()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topo, err := Build(ctx, Cone, Symmetric)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("topology:\n%s", topo.Dump())
		}
		if err := topo.Close(); err != nil {
			t.Error(err)
		}
		out, _ := exec.Command("ip", "netns", "list").Output()
		if strings.Contains(string(out), topo.Name+"-") {
			t.Errorf("namespaces left behind:\n%s", out)
		}
	})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	serve := func(ns, addr string) {
		cmd := Command(ctx, ns, self)
		cmd.Env = append(os.Environ(), "NETNS_PROBE=serve:"+addr)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		line, _ := bufio.NewReader(out).ReadString('\n')
		if strings.TrimSpace(line) != "listening" {
			t.Fatalf("probe server in %s: %q", ns, line)
		}
	}
	dial := func(ns string, localPort int, addr string) string {
		cmd := Command(ctx, ns, self)
		cmd.Env = append(os.Environ(), fmt.Sprintf("NETNS_PROBE=dial:%d:%s", localPort, addr))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("probe dial in %s: %v", ns, err)
		}
		return strings.TrimSpace(string(out))
	}
	serve(topo.Server, ":7000")
	cone, sym := topo.Homes[0], topo.Homes[1]
	if got, want := dial(cone.NS, 40001, ServerIP+":7000"), cone.WANIP+":40001"; got != want {
		t.Errorf("cone home seen as %q, want %q (NAT keeping the port)", got, want)
	}
	got := dial(sym.NS, 40001, ServerIP+":7000")
	if !strings.HasPrefix(got, sym.WANIP+":") || got == sym.WANIP+":40001" {
		t.Errorf("symmetric home seen as %q, want %s with another port than 40001", got, sym.WANIP)
	}
	// Unsolicited: a server in the home, dialled at the router's public
	// address and at the home's private one, is out of reach.
	serve(cone.NS, ":7001")
	for _, addr := range []string{cone.WANIP + ":7001", cone.IP + ":7001", cone.WANIP + ":40001"} {
		if got := dial(topo.Server, 0, addr); !strings.HasPrefix(got, "error:") {
			t.Errorf("the server reached %s unsolicited: %q", addr, got)
		}
	}
	// The home itself reaches its own server from inside.
	if got := dial(cone.NS, 0, cone.IP+":7001"); !strings.HasPrefix(got, cone.IP+":") {
		t.Errorf("home to itself: %q", got)
	}
}
