package cli

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/agoranet/agora/zkml"
)

// zkCeremonyCmd is `agora zk ceremony`: the multi-party Groth16 setup of a
// compiled circuit, so that no single party can forge proofs.
func zkCeremonyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ceremony",
		Short: "Multi-party Groth16 setup of a compiled circuit: init, contribute, add, phase2, seal, verify",
		Long: `The trusted setup without a trusted party (gnark's mpcsetup). Phase 1 (powers
of tau, sized to the circuit) and phase 2 (circuit-specific) are each a chain of
contributions: every contributor adds secret randomness on top of the previous
contribution and proves it did so; the randomness is gone when the command
exits. The keys are safe if at least one contributor was honest. Each phase
ends with a public beacon (on a network: the hash of a block at a height fixed
before the phase closes), and anyone can re-verify the whole transcript.

  agora zk ceremony init --dir zk                    # coordinator, after agora zk compile
  agora zk ceremony contribute --dir zk              # each party, in turn (or --in/--out with files)
  agora zk ceremony add --dir zk FILE                # coordinator: verify a received contribution, append it
  agora zk ceremony phase2 --dir zk --beacon HEX     # close phase 1, open phase 2; contribute again
  agora zk ceremony seal --dir zk --beacon HEX       # proving.key, verifying.key and its hash
  agora zk ceremony verify --dir zk                  # anyone: the whole transcript`,
	}
	var dir string
	var minContrib int
	progress := func() zkml.Logf { return zkml.LogTo(g.errOut) }

	initC := &cobra.Command{
		Use:   "init",
		Short: "Start a ceremony for the circuit in --dir (phase 1 sized to it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := zkml.InitCeremony(dir, progress())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "ceremony started in %s: phase 1, domain %d; next: agora zk ceremony contribute --dir %s\n",
				filepath.Join(dir, "ceremony"), c.Domain(), dir)
			return nil
		},
	}

	phase2 := &cobra.Command{
		Use:   "phase2",
		Short: "Re-verify phase 1, seal it with --beacon and open phase 2",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			beacon, err := beaconFlag(cmd)
			if err != nil {
				return err
			}
			c, err := zkml.OpenCeremony(dir)
			if err != nil {
				return err
			}
			e, err := c.ClosePhase1(beacon, minContrib, progress())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "phase 1 sealed; phase 2 open: start %s (hash %s); contributors run agora zk ceremony contribute again\n", e.File, e.Hash)
			return nil
		},
	}

	seal := &cobra.Command{
		Use:   "seal",
		Short: "Re-verify the transcript, seal phase 2 with --beacon: proving.key, verifying.key and its hash in --dir",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			beacon, err := beaconFlag(cmd)
			if err != nil {
				return err
			}
			c, err := zkml.OpenCeremony(dir)
			if err != nil {
				return err
			}
			s, err := c.Seal(beacon, minContrib, progress())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "sealed after %d + %d contributions: %s, %s\nverifying key hash %x\n",
				s.Transcript.Contributions(1), s.Transcript.Contributions(2),
				filepath.Join(dir, zkml.ProvingKeyFile), filepath.Join(dir, zkml.VerifyingKeyFile), s.VerifyingKeyHash)
			return nil
		},
	}
	for _, c := range []*cobra.Command{phase2, seal} {
		c.Flags().String("beacon", "", "public randomness as hex, ≥ 16 bytes (on a network: the hash of a block at a height announced before the phase closes)")
		c.Flags().IntVar(&minContrib, "min-contributions", 2, "refuse to seal a phase with fewer contributions")
	}

	verify := &cobra.Command{
		Use:   "verify",
		Short: "Re-verify the whole transcript in --dir: every contribution, both starts, both seals, the keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := zkml.OpenCeremony(dir)
			if err != nil {
				return err
			}
			t, err := c.Verify(progress())
			if err != nil {
				return err
			}
			for _, e := range t.Entries {
				what := fmt.Sprintf("contribution %d", e.Index)
				if e.Index == 0 {
					what = "start"
				}
				fmt.Fprintf(g.out, "phase %d %-16s %s  %s\n", e.Phase, what, e.Hash, e.File)
			}
			switch {
			case t.VerifyingKey != "":
				fmt.Fprintf(g.out, "valid and sealed: %d + %d contributions, beacons %s and %s\nverifying key hash %s\n",
					t.Contributions(1), t.Contributions(2), t.Phase1Beacon, t.Phase2Beacon, t.VerifyingKey)
			case t.Phase1Beacon != "":
				fmt.Fprintf(g.out, "valid so far: phase 1 sealed (%d contributions, beacon %s), phase 2 open with %d\n", t.Contributions(1), t.Phase1Beacon, t.Contributions(2))
			default:
				fmt.Fprintf(g.out, "valid so far: phase 1 open with %d contributions\n", t.Contributions(1))
			}
			return nil
		},
	}

	add := &cobra.Command{
		Use:   "add FILE",
		Short: "Verify a contribution received from a contributor against the transcript's last one and append it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := zkml.OpenCeremony(dir)
			if err != nil {
				return err
			}
			e, err := c.Add(args[0], progress())
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "phase %d contribution %d verified and added: %s\nhash %s\n", e.Phase, e.Index, e.File, e.Hash)
			return nil
		},
	}

	for _, c := range []*cobra.Command{initC, phase2, seal, verify, add} {
		c.Flags().StringVar(&dir, "dir", "zk", "circuit directory (from agora zk compile); the transcript is its ceremony/")
	}
	cmd.AddCommand(initC, zkContributeCmd(g), add, phase2, seal, verify)
	return cmd
}

// zkContributeCmd is `agora zk ceremony contribute`, also `agora zk
// contribute` (the name the issue gives it).
func zkContributeCmd(g *globals) *cobra.Command {
	var dir, in, out string
	cmd := &cobra.Command{
		Use:   "contribute",
		Short: "Add your secret randomness to the ceremony: on the transcript in --dir, or --in FILE --out FILE",
		Long: `Adds fresh randomness (crypto/rand) on top of the open phase's last contribution
and writes the result; the randomness exists only inside this process. With
--dir the transcript is local and the new contribution is appended to it; with
--in and --out you receive the coordinator's latest file and send back yours,
which the coordinator checks with agora zk ceremony add. Keep the printed hash:
it is how you find your contribution in agora zk ceremony verify's transcript.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (in == "") != (out == "") {
				return errors.New("--in and --out go together (or neither, with --dir)")
			}
			log := zkml.LogTo(g.errOut)
			if in != "" {
				if cmd.Flags().Changed("dir") {
					return errors.New("--dir or --in/--out, not both")
				}
				log("contributing on top of %s …", in)
				h, on, err := zkml.ContributeFile(in, out)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.out, "contribution written to %s (on top of %x)\nyour contribution's hash %x\n", out, on, h)
				return nil
			}
			c, err := zkml.OpenCeremony(dir)
			if err != nil {
				return err
			}
			e, err := c.Contribute(log)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "phase %d contribution %d written to %s\nyour contribution's hash %s\n", e.Phase, e.Index, e.File, e.Hash)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "zk", "circuit directory holding the transcript")
	cmd.Flags().StringVar(&in, "in", "", "contribution file to build on (instead of --dir)")
	cmd.Flags().StringVar(&out, "out", "", "where to write your contribution (with --in; refuses to overwrite)")
	return cmd
}

func beaconFlag(cmd *cobra.Command) ([]byte, error) {
	s, _ := cmd.Flags().GetString("beacon")
	if s == "" {
		return nil, errors.New("--beacon is required: public randomness nobody could choose (on a network, a block hash at a height fixed in advance)")
	}
	return zkml.ParseBeacon(s)
}
