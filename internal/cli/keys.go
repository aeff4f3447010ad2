package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/internal/keyring"
)

func keysCmd(g *globals) *cobra.Command {
	var backend, output string
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage ed25519 account keys (encrypted at rest; --keyring test for devnets)",
	}
	cmd.PersistentFlags().StringVar(&backend, "keyring", keyring.BackendFile, "keyring backend: file (encrypted) or test (plain)")
	cmd.PersistentFlags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	kr := func() (*keyring.Keyring, printer, error) {
		if err := checkOutput(output); err != nil {
			return nil, printer{}, err
		}
		k, err := openKeyring(g.home, backend)
		return k, printer{w: g.out, json: output == "json"}, err
	}
	showInfo := func(p printer, info keyring.Info) error {
		return p.print(info, func(w io.Writer) {
			fmt.Fprintf(w, "name: %s\naddress: %s\npub_key: %s\n", info.Name, info.Address, info.PubKey)
		})
	}
	cmd.AddCommand(
		&cobra.Command{Use: "add NAME", Short: "Create a new key", Args: cobra.ExactArgs(1), RunE: func(_ *cobra.Command, args []string) error {
			k, p, err := kr()
			if err != nil {
				return err
			}
			info, err := k.Add(args[0])
			if err != nil {
				return err
			}
			return showInfo(p, info)
		}},
		&cobra.Command{Use: "list", Short: "List keys", Args: cobra.NoArgs, RunE: func(_ *cobra.Command, _ []string) error {
			k, p, err := kr()
			if err != nil {
				return err
			}
			list, err := k.List()
			if err != nil {
				return err
			}
			if list == nil {
				list = []keyring.Info{}
			}
			return p.print(list, func(w io.Writer) {
				for _, i := range list {
					fmt.Fprintf(w, "%-16s %s\n", i.Name, i.Address)
				}
			})
		}},
		&cobra.Command{Use: "show NAME", Short: "Show a key's address and public key", Args: cobra.ExactArgs(1), RunE: func(_ *cobra.Command, args []string) error {
			k, p, err := kr()
			if err != nil {
				return err
			}
			info, err := k.Show(args[0])
			if err != nil {
				return err
			}
			return showInfo(p, info)
		}},
		&cobra.Command{Use: "export NAME", Short: "Print a key document (encrypted with the file keyring) for `keys import`", Args: cobra.ExactArgs(1), RunE: func(_ *cobra.Command, args []string) error {
			k, _, err := kr()
			if err != nil {
				return err
			}
			doc, err := k.Export(args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(g.out, string(doc))
			return err
		}},
		&cobra.Command{Use: "import NAME FILE", Short: "Import a key document written by `keys export` (FILE - for stdin)", Args: cobra.ExactArgs(2), RunE: func(_ *cobra.Command, args []string) error {
			k, p, err := kr()
			if err != nil {
				return err
			}
			var doc []byte
			if args[1] == "-" {
				doc, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
			} else {
				doc, err = os.ReadFile(args[1])
			}
			if err != nil {
				return err
			}
			info, err := k.ImportArmored(args[0], doc, func() (string, error) { return passphrase(false) })
			if err != nil {
				return err
			}
			return showInfo(p, info)
		}},
		&cobra.Command{Use: "delete NAME", Short: "Delete a key", Args: cobra.ExactArgs(1), RunE: func(_ *cobra.Command, args []string) error {
			k, _, err := kr()
			if err != nil {
				return err
			}
			if err := k.Delete(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "deleted key %q\n", args[0])
			return nil
		}},
	)
	return cmd
}
