package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

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
		&cobra.Command{Use: "list", Short: "List keys (of one keyring: --keyring)", Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
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
			if len(list) == 0 {
				// Said on stderr: stdout stays the (empty) list for scripts.
				fmt.Fprintf(g.errOut, "no keys in the %s keyring (%s)%s\n", backend, keyringDir(g.home, backend),
					otherKeyring(g.home, backend, cmd.Flags().Changed("keyring")))
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
				return keyHint(g.home, backend, args[0], err)
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

func keyringDir(home, backend string) string { return filepath.Join(home, "keyring-"+backend) }

// otherBackend is the keyring backend that backend is not.
func otherBackend(backend string) string {
	if backend == keyring.BackendTest {
		return keyring.BackendFile
	}
	return keyring.BackendTest
}

// otherKeys lists the keys of home's other keyring, without creating it.
func otherKeys(home, backend string) []keyring.Info {
	other := otherBackend(backend)
	if _, err := os.Stat(keyringDir(home, other)); err != nil {
		return nil
	}
	k, err := keyring.Open(home, other, nil)
	if err != nil {
		return nil
	}
	list, _ := k.List()
	return list
}

// otherKeyring says what home's other keyring holds, for a user who did not
// choose the keyring (`agora up` keeps its keys in the test keyring, and a
// bare `agora keys list` looks in the file one).
func otherKeyring(home, backend string, chosen bool) string {
	list := otherKeys(home, backend)
	if chosen || len(list) == 0 {
		return ""
	}
	names := make([]string, len(list))
	for i, k := range list {
		names[i] = k.Name
	}
	other := otherBackend(backend)
	return fmt.Sprintf("; the %s keyring holds %d (%s): agora keys list --keyring %s --home %s",
		other, len(list), strings.Join(names, ", "), other, home)
}

// keyHint adds to a key-not-found error that the other keyring has the key.
func keyHint(home, backend, name string, err error) error {
	if !errors.Is(err, keyring.ErrNotFound) {
		return err
	}
	for _, k := range otherKeys(home, backend) {
		if k.Name == name {
			return fmt.Errorf("%w (the %s keyring has it: use --keyring %s)", err, otherBackend(backend), otherBackend(backend))
		}
	}
	return err
}
