// Package protocol is the root of the formats that roles exchange: each
// subpackage is a leaf that every role may import, and no role imports
// another role (the layout package's tests check both from `go list`).
//
//   - protocol/payment: the voucher a client pays a provider with on a
//     payment channel, as carried in an HTTP header.
//   - protocol/inference: the inference service between gateway, provider
//     and validator: request and receipt headers, the cost rule, the
//     transcripts and openings a validator fetches, the verification kinds,
//     and the provider's HTTP paths.
//   - protocol/blob: content addresses of job modules, inputs, results and
//     datasets (a Merkle root over 64 KiB chunks, bound to the size), the
//     manifest and per-chunk proofs, and the blob server's HTTP paths.
//
// reqauth (the MAC over a paid request) is a protocol leaf of the same kind.
package protocol
