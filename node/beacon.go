package node

import (
	stded25519 "crypto/ed25519"
	"fmt"
	"log/slog"

	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/privval"

	"github.com/agoranet/agora/chain/app"
)

// setBeaconKey hands the node's consensus key to the app, which makes its VRF
// contributions to the epoch beacon with it (chain/epochs beacon.go). The app
// runs in this process behind a local ABCI client, so the key never leaves it.
func setBeaconKey(a *app.App, pv *privval.FilePV, logger *slog.Logger) error {
	k, ok := pv.Key.PrivKey.(ed25519.PrivKey)
	if !ok {
		logger.Warn("consensus key is not ed25519: this validator cannot contribute to the epoch beacon", "type", pv.Key.PrivKey.Type())
		return nil
	}
	if err := a.SetBeaconKey(stded25519.PrivateKey(k.Bytes())); err != nil {
		return fmt.Errorf("consensus key %s: %w", pv.Key.PrivKey.Type(), err)
	}
	return nil
}
