package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/internal/kvlog"
)

func storeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "store", Short: "Repair a provider's or gateway's store"}
	var dir, output string
	recoverCmd := &cobra.Command{
		Use:   "recover",
		Short: "Open a store whose log was refused as corrupt: keep the log before the bad frame, move the rest aside",
		Long: `A provider or gateway refuses to start when its store's log holds a frame that fails its
checksum with more log after it (corruption, not a write a crash tore: replaying only what comes
before would silently drop acknowledged receipts). This command is the operator's decision to go on
with what comes before: it replays the log up to the bad frame into the store, copies the segment's
bytes from the bad frame on to <segment>.corrupt-<offset> and renames any later segment
<segment>.corrupt-0 (nothing is deleted), and prints what it kept and set aside. The store then
opens. Stop the daemon first (the store is locked while open).

--store is the directory the refusal names: HOME/data/provider or HOME/data/gateway (under
agora up: HOME/data/provider, HOME/data/provider-2, ... and HOME/data/gateway).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			// A mistyped path must not become a new, empty store.
			if fi, err := os.Stat(filepath.Join(dir, "agora-log")); err != nil || !fi.IsDir() {
				return fmt.Errorf("no store at %s (no agora-log directory in it)", dir)
			}
			logger, err := newLogger(g.logLevel, "text", g.errOut)
			if err != nil {
				return err
			}
			rec, err := kvlog.Recover(dir, logger)
			if err != nil {
				return fmt.Errorf("recover store %s: %w", dir, err)
			}
			return printer{w: g.out, json: output == "json"}.print(rec, func(w io.Writer) { printRecovery(w, rec) })
		},
	}
	recoverCmd.Flags().StringVar(&dir, "store", "", "the store's directory (HOME/data/provider, HOME/data/gateway, ...)")
	recoverCmd.MarkFlagRequired("store")
	addOutputFlag(recoverCmd, &output)
	cmd.AddCommand(recoverCmd)
	return cmd
}

func printRecovery(w io.Writer, r *kvlog.Recovery) {
	switch {
	case r.Segment == "":
		fmt.Fprintf(w, "store %s: the log is whole\n", r.Store)
	case r.Torn:
		fmt.Fprintf(w, "store %s: a torn write at offset %d of %s (%s), dropped as a start would\n", r.Store, r.Offset, r.Segment, r.Reason)
	default:
		fmt.Fprintf(w, "store %s: corrupt frame at offset %d of %s (%s)\n", r.Store, r.Offset, r.Segment, r.Reason)
	}
	fmt.Fprintf(w, "kept %d frame(s), %d bytes of log, replayed into the store\n", r.KeptFrames, r.KeptBytes)
	for _, a := range r.SetAside {
		fmt.Fprintf(w, "set aside %d bytes (%d frame(s) in them check out) in %s\n", a.Bytes, a.Frames, a.Path)
	}
	fmt.Fprintln(w, "the store opens now")
}
