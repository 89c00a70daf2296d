package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Daemon is a `mesh daemon` running in a namespace.
type Daemon struct {
	NS, Repo, Bin string

	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// StartDaemon runs `bin --repo repo --api 127.0.0.1:0 daemon --no-mdns
// --no-portmap args...` in namespace ns (its API listens on the namespace's
// own loopback) and waits until it says it is ready.
func StartDaemon(ctx context.Context, bin, ns, repo string, args ...string) (*Daemon, error) {
	d := &Daemon{NS: ns, Repo: repo, Bin: bin, out: &lockedBuffer{}, done: make(chan struct{})}
	full := append([]string{"--repo", repo, "--api", "127.0.0.1:0", "daemon", "--no-mdns", "--no-portmap"}, args...)
	d.cmd = Command(context.Background(), ns, bin, full...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	os.Remove(repo + "/api") // a stale address file of an earlier run
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for i := 0; i < 1200; i++ {
		if strings.Contains(d.out.String(), "daemon ready") {
			return d, nil
		}
		select {
		case <-d.done:
			return nil, fmt.Errorf("mesh daemon in %s exited: %s", ns, d.out.String())
		case <-ctx.Done():
			d.Kill()
			return nil, fmt.Errorf("mesh daemon in %s did not come up: %s", ns, d.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.Kill()
	return nil, fmt.Errorf("mesh daemon in %s did not come up: %s", ns, d.out.String())
}

// Logs is what the daemon printed so far.
func (d *Daemon) Logs() string { return d.out.String() }

// Stop sends SIGTERM and waits up to 10 s, then kills.
func (d *Daemon) Stop() {
	if d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.Kill()
	}
}

// Kill kills the daemon and waits for it.
func (d *Daemon) Kill() {
	if d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
	}
}

// Mesh runs `bin --repo repo args...` in namespace ns and returns its
// standard output; a non-zero exit is an error carrying standard error.
func Mesh(ctx context.Context, bin, ns, repo string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := Command(ctx, ns, bin, append([]string{"--repo", repo}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), fmt.Errorf("mesh %s (in %s): exit %d: %s%s", strings.Join(args, " "), ns, ee.ExitCode(), errb.String(), out.String())
	}
	if err != nil {
		return out.String(), fmt.Errorf("mesh %s (in %s): %w", strings.Join(args, " "), ns, err)
	}
	return out.String(), nil
}
