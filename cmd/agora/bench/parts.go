package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/provider"
)

// parts are the servers on the request path that `bench gateway` measures:
// the fake backend, a provider in front of it (OpenAI adapter) and a
// gateway, run in this process or each in its own.
type parts struct {
	backend, provider, gateway string // base URLs
	stop                       func()
}

// Part roles, as `agora bench gateway-part ROLE` runs them.
const (
	RoleBackend  = "backend"
	RoleProvider = "provider"
	RoleGateway  = "gateway"
)

// startPart starts one part in this process and returns its base URL and
// how to stop it. The provider and the gateway take their keys from the
// bench's fixed seeds, their state under dir.
func startPart(ctx context.Context, role, chainRPC, dir, backendURL string, logger *slog.Logger) (string, func(), error) {
	switch role {
	case RoleBackend:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		srv := &http.Server{Handler: fakeBackend()}
		go srv.Serve(ln)
		return "http://" + ln.Addr().String() + "/v1", func() { srv.Close() }, nil
	case RoleProvider:
		adapter, err := provider.NewOpenAIBackend(backendURL, "", []string{"fake"}, 4096)
		if err != nil {
			return "", nil, err
		}
		p, err := provider.New(provider.Config{ChainRPC: chainRPC, Key: benchKeyNamed("provider"), Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "provider"),
			PriceIn: 100, PriceOut: 200, Concurrency: 256, Queue: 1024, Credit: 1 << 50}, adapter, logger, nil)
		if err != nil {
			return "", nil, err
		}
		if err := p.Start(ctx); err != nil {
			return "", nil, err
		}
		return p.URL(), func() { p.Stop() }, nil
	case RoleGateway:
		gw, err := gateway.New(gateway.Config{ChainRPC: chainRPC, Key: benchKeyNamed("client"), Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "gateway"), Deposit: 1 << 38}, logger, nil)
		if err != nil {
			return "", nil, err
		}
		if err := gw.Start(ctx); err != nil {
			return "", nil, err
		}
		return gw.URL(), func() { gw.Stop() }, nil
	}
	return "", nil, fmt.Errorf("unknown part %q: want backend, provider or gateway", role)
}

// startParts starts the three parts in this process.
func startParts(ctx context.Context, chainRPC, dir string, logger *slog.Logger) (*parts, error) {
	return chainParts(func(role, backendURL string) (string, func(), error) {
		return startPart(ctx, role, chainRPC, dir, backendURL, logger)
	})
}

// chainParts starts the backend, then the provider in front of it, then
// the gateway, with start; on a failure it stops what it started.
func chainParts(start func(role, backendURL string) (string, func(), error)) (*parts, error) {
	pt := &parts{}
	var stops []func()
	pt.stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	for _, role := range []string{RoleBackend, RoleProvider, RoleGateway} {
		url, stop, err := start(role, pt.backend)
		if err != nil {
			pt.stop()
			return nil, fmt.Errorf("%s: %w", role, err)
		}
		stops = append(stops, stop)
		switch role {
		case RoleBackend:
			pt.backend = url
		case RoleProvider:
			pt.provider = url
		case RoleGateway:
			pt.gateway = url
		}
	}
	return pt, nil
}

// partReady is the line a part process prints once it serves.
const partReady = "serving "

// RunGatewayPart runs one part until ctx ends or its standard input closes
// (the bench that started it has gone), printing its URL on out once ready.
func RunGatewayPart(ctx context.Context, role, chainRPC, dir, backendURL string, in io.Reader, out io.Writer) error {
	switch {
	case role != RoleBackend && role != RoleProvider && role != RoleGateway:
		return fmt.Errorf("unknown part %q: want backend, provider or gateway", role)
	case role != RoleBackend && (chainRPC == "" || dir == ""):
		return fmt.Errorf("the %s part needs --chain-rpc and --dir", role)
	case role == RoleProvider && backendURL == "":
		return errors.New("the provider part needs --backend")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	url, stop, err := startPart(ctx, role, chainRPC, dir, backendURL, logger)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Fprintln(out, partReady+url)
	go func() {
		io.Copy(io.Discard, in)
		cancel()
	}()
	<-ctx.Done()
	return nil
}

// spawnParts starts the three parts as child processes of this executable
// (`agora bench gateway-part`), so that each has its own scheduler, as
// separate daemons on one machine do.
func spawnParts(ctx context.Context, chainRPC, dir string, _ *slog.Logger) (*parts, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return chainParts(func(role, backendURL string) (string, func(), error) {
		return spawnPart(exe, role, chainRPC, dir, backendURL)
	})
}

func spawnPart(exe, role, chainRPC, dir, backendURL string) (string, func(), error) {
	cmd := exec.Command(exe, "bench", "gateway-part", role, "--chain-rpc", chainRPC, "--dir", dir, "--backend", backendURL)
	if os.Getenv("GOGC") == "" {
		cmd.Env = append(os.Environ(), "GOGC=400") // as this process runs (tuneGC)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		stdin.Close()
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if url, ok := strings.CutPrefix(sc.Text(), partReady); ok {
				lines <- url
				break
			}
		}
		close(lines)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case url, ok := <-lines:
		if ok {
			return url, stop, nil
		}
	case <-time.After(60 * time.Second):
	}
	stop()
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		msg = "it did not report its address"
	}
	return "", nil, errors.New(msg)
}
