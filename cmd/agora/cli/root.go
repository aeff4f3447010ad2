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
func NewRoot() *cobra.Command { return newRoot(os.Stdout, os.Stderr) }

// ErrPrefix starts every error the command line prints (cobra's own, for
// the few it prints itself).
const ErrPrefix = "Error:"

// Run runs the command line on args, printing an error on errOut as
// "Error: ..." (one prefix for every failure), and returns the exit code.
func Run(args []string, out, errOut io.Writer) int {
	root := newRoot(out, errOut)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(errOut, ErrPrefix, err)
		return 1
	}
	return 0
}

func newRoot(out, errOut io.Writer) *cobra.Command {
	g := &globals{out: out, errOut: errOut}
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
		modelCmd(g), generateCmd(g), providerCmd(g), gatewayCmd(g), validatorCmd(g), receiptCmd(g), storeCmd(g), jobCmd(g), dataCmd(g), storageCmd(g),
		trainCmd(g),
		zkCmd(g),
	)
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetErrPrefix(ErrPrefix)
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every group of commands (`agora keys`,
// `agora gateway` ...) fail on an unknown subcommand as the root does —
// cobra would print the group's help and exit 0 on a typo such as
// `agora gateway strat` — and still print its help when given none.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if c.HasParent() && c.HasSubCommands() && !c.Runnable() {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q (run `%s --help` for its commands)", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		}
	}
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
