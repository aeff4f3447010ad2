// Package cli is the `agora` command line.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/agoranet/agora/internal/keyring"
)

// globals are the flags every command shares.
type globals struct {
	home     string
	logLevel string
	out      io.Writer
	errOut   io.Writer
}

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	g := &globals{out: os.Stdout, errOut: os.Stderr}
	root := &cobra.Command{
		Use:           "agora",
		Short:         "Agora: a decentralized network for AI compute",
		Long:          "Agora: providers contribute compute, clients pay per use through payment channels, validators verify by sampling.\nRun `agora up` for a local network.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.home, "home", defaultHome(), "node and keyring home directory")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "", "log level: debug, info, warn, error (overrides the config)")
	root.AddCommand(
		initCmd(g), startCmd(g), upCmd(g), testnetCmd(g),
		keysCmd(g), txCmd(g), queryCmd(g), benchCmd(g), versionCmd(g),
		modelCmd(g), generateCmd(g), providerCmd(g), gatewayCmd(g), validatorCmd(g), receiptCmd(g), storeCmd(g),
	)
	return root
}

// Version is the binary's version.
const Version = "0.1.0"

func versionCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "version", Short: "Print the version", RunE: func(cmd *cobra.Command, _ []string) error {
		fmt.Fprintf(cmd.OutOrStdout(), "agora %s (cometbft v1.0.1)\n", Version)
		return nil
	}}
}

func defaultHome() string {
	if h := os.Getenv("AGORA_HOME"); h != "" {
		return h
	}
	d, err := os.UserHomeDir()
	if err != nil {
		return ".agora"
	}
	return filepath.Join(d, ".agora")
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "", "info":
		l = slog.LevelInfo
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("unknown log format %q (want text or json)", format)
}

// passphrase reads AGORA_PASSPHRASE or asks on the terminal.
func passphrase(confirm bool) (string, error) {
	if p, ok := os.LookupEnv("AGORA_PASSPHRASE"); ok {
		return p, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return "", errors.New("a passphrase is needed: set AGORA_PASSPHRASE or run in a terminal (or use --keyring test on a devnet)")
	}
	fmt.Fprint(os.Stderr, "Key passphrase: ")
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", err
	}
	if confirm {
		fmt.Fprint(os.Stderr, "Repeat passphrase: ")
		q, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", err
		}
		if string(p) != string(q) {
			return "", errors.New("passphrases do not match")
		}
	}
	return string(p), nil
}

func openKeyring(home, backend string) (*keyring.Keyring, error) {
	return keyring.Open(home, backend, passphrase)
}

// printer renders either text or JSON.
type printer struct {
	w    io.Writer
	json bool
}

func (p printer) print(v any, text func(io.Writer)) error {
	if p.json || text == nil {
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(p.w)
	return nil
}

func addOutputFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "output", "o", "text", "output format: text or json")
}

func checkOutput(o string) error {
	if o != "text" && o != "json" {
		return fmt.Errorf("--output must be text or json, got %q", o)
	}
	return nil
}

// tuneGC makes the collector run less often than Go's default (GOGC=100)
// unless the operator set GOGC: a node allocates many short-lived objects per
// tx and has memory to spare, and measured throughput rises markedly.
func tuneGC() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(400)
	}
}
