// Package layout holds no code. Its tests check the module's layering from
// the output of `go list -deps -json ./...`:
//
//   - the state machine (chain/...) links nothing of this module outside
//     chain/: no engine, no verify, no receipt, no role, no node;
//   - no role package (provider, gateway, validator, explorer) links another
//     role package, nor do its tests import one;
//   - the packages of the formats roles exchange (protocol/..., reqauth) link
//     no role and no engine.
package layout
