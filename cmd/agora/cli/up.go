package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/client"
	"github.com/agoranet/agora/demomodel"
	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/executor"
	"github.com/agoranet/agora/gateway"
	"github.com/agoranet/agora/internal/atomicfile"
	"github.com/agoranet/agora/internal/keyring"
	"github.com/agoranet/agora/node"
	"github.com/agoranet/agora/provider"
	"github.com/agoranet/agora/storer"
	"github.com/agoranet/agora/validator"
)

// upOpts are `agora up`'s own flags (the node's come from initOpts).
type upOpts struct {
	gwAddr, provAddr, modelPath string
	backend                     string
	backendModels               []string
	providers                   int
}

// providerKeyName names the test-keyring key of the i-th local provider.
func providerKeyName(i int) string {
	if i == 0 {
		return "provider"
	}
	return "provider-" + strconv.Itoa(i+1)
}

// providerAddr is the i-th provider's listen address: the base port + i.
func providerAddr(base string, i int) (string, error) {
	host, port, err := net.SplitHostPort(base)
	if err != nil {
		return "", fmt.Errorf("--provider.laddr %q: %w", base, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p+i > 65535 {
		return "", fmt.Errorf("--provider.laddr %q: bad port", base)
	}
	return net.JoinHostPort(host, strconv.Itoa(p+i)), nil
}

// cleanups runs registered stop functions in reverse order.
type cleanups []func()

func (c *cleanups) add(f func()) { *c = append(*c, f) }

func (c cleanups) run() {
	for i := len(c) - 1; i >= 0; i-- {
		c[i]()
	}
}

func upCmd(g *globals) *cobra.Command {
	o := &initOpts{}
	u := &upOpts{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a whole local network in one process: node, validator worker, provider(s) with a built-in model, gateway, explorer",
		Long: "Start a local single-validator chain with its audit worker, providers serving the built-in demo model\n" +
			"(or --model FILE.gguf, or --backend URL), an OpenAI-compatible gateway and the explorer, all in this\n" +
			"process. The first run creates the home (funded accounts, the demo model, and their keys in the test\n" +
			"keyring: stored UNENCRYPTED, as fits a local devnet; `agora up` has no --keyring); a first run that\n" +
			"fails removes what it wrote. Later runs resume from the home.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runUp(cmd, g, o, u) },
	}
	o.register(cmd)
	f := cmd.Flags()
	f.StringVar(&u.gwAddr, "gateway.laddr", "127.0.0.1:8080", "gateway listen address")
	f.StringVar(&u.provAddr, "provider.laddr", "127.0.0.1:8090", "first provider's listen address (the next ones take the following ports)")
	f.IntVar(&u.providers, "providers", 1, "number of providers")
	f.StringVar(&u.modelPath, "model", "", "GGUF model to serve (default: the built-in demo model, written on first run)")
	f.StringVar(&u.backend, "backend", "", "serve an OpenAI-compatible server's models (e.g. http://127.0.0.1:8081/v1) instead of a GGUF file")
	f.StringSliceVar(&u.backendModels, "backend-model", nil, "model served by --backend (repeatable): NAME, or NAME=FILE.gguf to make it verifiable")
	f.Lookup("chain-id").DefValue = "agora-local"
	f.Set("chain-id", "agora-local")
	return cmd
}

func runUp(cmd *cobra.Command, g *globals, o *initOpts, u *upOpts) error {
	fs := cmd.Flags()
	if u.providers < 1 || u.providers > 16 {
		return fmt.Errorf("--providers %d: want 1 to 16", u.providers)
	}
	if u.backend != "" && len(u.backendModels) == 0 {
		return errors.New("--backend needs at least one --backend-model NAME")
	}
	if u.backend != "" && u.modelPath != "" {
		return errors.New("give --model or --backend, not both")
	}
	if err := node.CheckNotRunning(g.home); err != nil {
		return err
	}
	first := !node.Initialized(g.home)
	// The node's settings this run will use: the home's (or, on the first
	// run, the defaults) with the flags over them.
	cfg := node.DefaultConfig()
	if !first {
		var err error
		if cfg, err = node.LoadConfig(g.home); err != nil {
			return err
		}
	}
	o.nf.apply(fs, &cfg)
	// Every port is checked before the first run writes anything: a busy
	// one fails here, naming its flag, and leaves no home behind.
	addrs := []struct{ addr, flag string }{
		{cfg.API.Laddr, "api.laddr"},
		{strings.TrimPrefix(cfg.RPC.Laddr, "tcp://"), "rpc.laddr"},
		{strings.TrimPrefix(cfg.P2P.Laddr, "tcp://"), "p2p.laddr"},
		{u.gwAddr, "gateway.laddr"},
	}
	for i := 0; i < u.providers; i++ {
		a, err := providerAddr(u.provAddr, i)
		if err != nil {
			return err
		}
		addrs = append(addrs, struct{ addr, flag string }{a, "provider.laddr"})
	}
	for _, a := range addrs {
		if err := portFree(a.addr); err != nil {
			return fmt.Errorf("%s is busy (--%s): %w", a.addr, a.flag, err)
		}
	}
	var made *homeSnapshot
	if first {
		var err error
		if made, err = snapshotHome(g.home); err != nil {
			return err
		}
		fmt.Fprintf(g.out, "Creating a local network in %s ...\n", g.home)
		o.keyringBackend = keyring.BackendTest
		if err := runInit(g, o, fs, func(kr *keyring.Keyring) ([]types.GenesisAccount, error) {
			names := []string{"demo"}
			for i := 0; i < u.providers; i++ {
				names = append(names, providerKeyName(i))
			}
			var out []types.GenesisAccount
			for _, name := range names {
				k, err := getOrAddKey(kr, name)
				if err != nil {
					return nil, err
				}
				out = append(out, types.GenesisAccount{Address: k.Address, Balance: o.balance})
			}
			return out, nil
		}); err != nil {
			return made.undoAfter(g, err)
		}
		// What init wrote (its moniker, say), with the flags over it.
		if cfg, err = node.LoadConfig(g.home); err != nil {
			return made.undoAfter(g, err)
		}
		o.nf.apply(fs, &cfg)
	}
	upped := false
	err := func() error {
		if u.backend == "" && u.modelPath == "" {
			u.modelPath = filepath.Join(g.home, "models", demomodel.Name+".gguf")
			if _, err := os.Stat(u.modelPath); err != nil {
				// The trained demo model (demomodel: the project's trainer on
				// the Brown Corpus), embedded in the binary. A home that
				// already has one keeps it: its receipts name that file's
				// model, and its audits re-execute with it.
				fmt.Fprintf(g.out, "Writing the built-in demo model to %s ...\n", u.modelPath)
				if err := os.MkdirAll(filepath.Dir(u.modelPath), 0o755); err != nil {
					return err
				}
				if err := atomicfile.Write(u.modelPath, 0o644, func(w io.Writer) error { _, err := w.Write(demomodel.GGUF); return err }); err != nil {
					return fmt.Errorf("write the demo model: %w", err)
				}
			}
		}
		// One process, one descriptor budget: the node's API and RPC, each
		// provider, and the gateway (twice: each request it serves holds a
		// connection to a provider too).
		shares := 2 + u.providers + 2
		return runNode(cmd.Context(), g, cfg, shares, func(ctx context.Context, n *node.Node, logger *slog.Logger) (func(), error) {
			var stop cleanups
			banner, err := startLocalNet(ctx, g, o, u, cfg, n, logger, &stop)
			if err != nil {
				stop.run()
				return nil, err
			}
			upped = true
			fmt.Fprint(g.out, banner)
			return stop.run, nil
		})
	}()
	if err != nil && first && !upped {
		return made.undoAfter(g, err)
	}
	return err
}

// homeSnapshot is what a home held before a first `agora up` wrote into it:
// whether it existed, and the entries of it and of its config and data
// directories. A first run that fails before the network is up removes
// what it added, so the next run starts afresh (with that run's flags)
// instead of resuming a half-made network that keeps the failed settings.
type homeSnapshot struct {
	home    string
	existed bool
	entries map[string]bool // paths under home, two levels deep
}

func snapshotHome(home string) (*homeSnapshot, error) {
	s := &homeSnapshot{home: home, entries: map[string]bool{}}
	if _, err := os.Stat(home); err == nil {
		s.existed = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, dir := range []string{home, filepath.Join(home, "config"), filepath.Join(home, "data")} {
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		for _, e := range ents {
			s.entries[filepath.Join(dir, e.Name())] = true
		}
	}
	return s, nil
}

// undo removes what was added to the home since the snapshot: the home
// itself if it was new, else the new entries of its config and data
// directories, then its own new entries (keys added to a keyring that
// existed stay).
func (s *homeSnapshot) undo() error {
	if !s.existed {
		return os.RemoveAll(s.home)
	}
	var errs []error
	for _, dir := range []string{filepath.Join(s.home, "config"), filepath.Join(s.home, "data"), s.home} {
		if dir != s.home && !s.entries[dir] {
			continue // new: removed with the home's new entries
		}
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		for _, e := range ents {
			if p := filepath.Join(dir, e.Name()); !s.entries[p] {
				errs = append(errs, os.RemoveAll(p))
			}
		}
	}
	return errors.Join(errs...)
}

// undoAfter undoes a failed first run and returns its error, saying so.
func (s *homeSnapshot) undoAfter(g *globals, err error) error {
	if uerr := s.undo(); uerr != nil {
		return fmt.Errorf("%w (and removing the half-made network in %s failed: %v; remove it before running again)", err, s.home, uerr)
	}
	fmt.Fprintf(g.errOut, "The first run did not come up: removed what it wrote to %s, so the next run starts afresh.\n", s.home)
	return err
}

// startLocalNet starts the providers, the gateway and the validator worker
// beside the running node, registering how to stop each in stop. It returns
// the banner to print.
func startLocalNet(ctx context.Context, g *globals, o *initOpts, u *upOpts, cfg node.Config, n *node.Node, logger *slog.Logger, stop *cleanups) (string, error) {
	kr, err := keyring.Open(g.home, keyring.BackendTest, nil)
	if err != nil {
		return "", err
	}
	demoKey, err := kr.PrivKey("demo")
	if err != nil {
		return "", fmt.Errorf("up needs the test-keyring key %q: %w", "demo", err)
	}
	opKey, err := kr.PrivKey(o.keyName)
	if err != nil {
		return "", fmt.Errorf("up needs the test-keyring key %q: %w", o.keyName, err)
	}
	fmt.Fprintf(g.out, "Waiting for the first block ...\n")
	for n.App().Height() < 1 {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	chain, err := client.New(cfg.RPC.Laddr)
	if err != nil {
		return "", err
	}
	opSigner := chain.NewSigner(opKey)

	var b provider.Backend
	model := ""
	if u.backend != "" {
		ob, err := provider.NewOpenAIBackend(u.backend, "", u.backendModels, 4096)
		if err != nil {
			return "", err
		}
		stop.add(ob.Close)
		b = ob
		model, _, _ = strings.Cut(u.backendModels[0], "=")
	} else {
		fmt.Fprintf(g.out, "Loading the model %s ...\n", u.modelPath)
		nb, err := provider.NewNativeBackend([]string{u.modelPath}, native.Options{})
		if err != nil {
			return "", err
		}
		stop.add(func() { nb.Close() })
		b = nb
		model = strings.TrimSuffix(filepath.Base(u.modelPath), filepath.Ext(u.modelPath))
	}
	fmt.Fprintf(g.out, "Registering %d provider(s) ...\n", u.providers)
	var host *executor.Executor
	var hostKey ed25519.PrivateKey
	for i := 0; i < u.providers; i++ {
		name := providerKeyName(i)
		key, err := kr.PrivKey(name)
		if err != nil {
			// A provider added on a later run: a new key, funded by the validator's operator.
			info, err := kr.Add(name)
			if err != nil {
				return "", fmt.Errorf("provider key %q: %w", name, err)
			}
			if _, err := opSigner.Send(ctx, &types.MsgSend{To: info.Address, Amount: 10_000_000_000}); err != nil {
				return "", fmt.Errorf("fund provider %q: %w", name, err)
			}
			if key, err = kr.PrivKey(name); err != nil {
				return "", err
			}
		}
		addr, _ := providerAddr(u.provAddr, i)
		dir := filepath.Join(g.home, "data", name)
		// Each provider also runs compute jobs (provider start --wasm), so
		// an example job can be submitted at once.
		reg := registry()
		ex, err := executor.New(executor.Config{ChainRPC: cfg.RPC.Laddr, Key: key, DataDir: filepath.Join(dir, "executor"),
			CacheDir: filepath.Join(g.home, "data", "wasm-cache"), Price: uint64(1000 + 100*i), MaxCollateral: 10_000_000, MaxConcurrent: 1,
			MaxGas: 10_000_000_000_000, // ≈ 1,000 steps of the tiny training preset: a devnet takes long jobs
		}, logger.With("module", "executor", "provider", name), reg)
		if err != nil {
			return "", err
		}
		if err := ex.Start(ctx); err != nil {
			return "", err
		}
		stop.add(func() { ex.Stop() })
		// And takes storage deals (provider start --storage), so `agora
		// storage deal` works at once.
		st, err := storer.New(storer.Config{ChainRPC: cfg.RPC.Laddr, Key: key, DataDir: filepath.Join(dir, "storer"), MaxTotal: 256 << 20},
			logger.With("module", "storer", "provider", name), reg)
		if err != nil {
			return "", err
		}
		if err := st.Start(ctx); err != nil {
			return "", err
		}
		stop.add(func() { st.Stop() })
		p, err := provider.New(provider.Config{ChainRPC: cfg.RPC.Laddr, Key: key, Listen: addr, DataDir: dir,
			PriceIn: uint64(10 + i), PriceOut: uint64(20 + 2*i), Concurrency: 2, MaxBlockAge: cfg.MaxBlockAge(),
			ExtraCapabilities: []string{"wasm", "storage"}, Mount: func(mux *http.ServeMux) { ex.Mount(mux); st.Mount(mux) }},
			b, logger.With("module", "provider", "provider", name), reg)
		if err != nil {
			return "", err
		}
		if err := p.Start(ctx); err != nil {
			return "", err
		}
		stop.add(func() { p.Stop() })
		if i == 0 {
			host, hostKey = ex, key
		}
	}
	// The first provider publishes and hosts a small sample dataset with
	// the word-count module allowed: a compute-to-data run to try at once.
	if host == nil {
		return "", fmt.Errorf("up needs at least one provider")
	}
	sample, err := publishSample(ctx, g, chain, hostKey, host)
	if err != nil {
		return "", err
	}
	gw, err := gateway.New(gateway.Config{ChainRPC: cfg.RPC.Laddr, Key: demoKey, Listen: u.gwAddr, DataDir: filepath.Join(g.home, "data", "gateway"),
		MaxBlockAge: cfg.MaxBlockAge()}, logger.With("module", "gateway"), registry())
	if err != nil {
		return "", err
	}
	if err := gw.Start(ctx); err != nil {
		return "", err
	}
	stop.add(func() { gw.Stop() })

	// The validator's audit worker re-executes sampled receipts with the
	// same model — bit for bit for the native engine, within tolerances for
	// a backend model declared NAME=FILE.gguf (one declared by name only is
	// unverifiable) — and reports faults with the operator key.
	var models []string
	if u.modelPath != "" {
		models = []string{u.modelPath}
	}
	for _, decl := range u.backendModels {
		if _, path, ok := strings.Cut(decl, "="); ok {
			models = append(models, path)
		}
	}
	auditor, err := validator.NewAuditor(chain, models)
	if err != nil {
		return "", err
	}
	// A model trained on the network and registered (agora model register)
	// is fetched from its trainer the first time a receipt names it.
	auditor.FetchRegistered(filepath.Join(g.home, "validator", "registry-models"), 8<<30)
	// It also audits compute jobs' sampled checkpoints, challenges the
	// wrong ones and referees one-step disputes.
	jv, err := validator.NewJobVerifier(ctx, chain, opSigner, validator.JobOptions{BlobDir: filepath.Join(g.home, "validator", "blobs"), CacheDir: filepath.Join(g.home, "data", "wasm-cache")},
		nil, logger.With("module", "validator-jobs"))
	if err != nil {
		auditor.Close()
		return "", err
	}
	wctx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		validator.NewWorker(chain, auditor, opSigner, nil, logger.With("module", "validator")).WithJobs(jv).Run(wctx)
	}()
	stop.add(func() {
		stopWorker()
		<-workerDone
		auditor.Close()
		jv.Close(context.Background())
	})

	provs := fmt.Sprintf("a provider serving %q", model)
	if u.providers > 1 {
		provs = fmt.Sprintf("%d providers serving %q", u.providers, model)
	}
	return fmt.Sprintf(`
Agora is up (chain %[1]s): a validator with its audit worker, %[2]s, and a gateway.

  curl %[3]s/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"model":"%[7]s","messages":[{"role":"user","content":"Hello!"}],"max_tokens":32}'

  OpenAI SDK (Python):  OpenAI(base_url="%[3]s/v1", api_key="unused")
  compute job:          agora job submit --example raytrace --from demo --keyring test --home %[5]s --node %[9]s
                        agora job result ORDER_ID --out ./result --node %[9]s
  compute-to-data:      agora data run %[10]d --module %[11]s --args 10 --from demo --keyring test --home %[5]s --node %[9]s
                        (the word count on the sample dataset %[10]d, run by its host; the results come back sealed to demo's key)
  train a model:        agora job submit --train tiny,50,1 --input TEXT_FILE --from demo --keyring test --home %[5]s --node %[9]s
                        (from inside an Agora checkout; then agora model register ORDER_ID with the same --from and --node)
  storage deal:         agora storage deal FILE --epochs 100 --from demo --keyring test --home %[5]s --node %[9]s
                        agora storage status DEAL_ID --node %[9]s
  explorer:             %[6]s
  receipts:             curl %[3]s/v1/receipts
  chain status:         curl http://%[4]s/v1/status
  keys:                 agora keys list --keyring test --home %[5]s
                        (stored UNENCRYPTED in %[8]s: a local devnet's keys only)

Press Ctrl-C to stop; run it again to resume.
`, n.App().ChainID(), provs, gw.URL(), cfg.API.Laddr, g.home, explorerURL(cfg), model, filepath.Join(g.home, "keyring-"+keyring.BackendTest), cfg.RPC.Laddr, sample.ID, sample.Module), nil
}
