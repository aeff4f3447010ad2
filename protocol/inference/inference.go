// Package inference is the wire protocol of the inference service between
// its roles: the HTTP headers and SSE comment a gateway and a provider
// exchange on a request, the request id of a stream, the cost rule both
// apply to a receipt's token counts, the provider's HTTP paths, and the
// transcripts and openings a validator fetches to audit a provider.
//
// It is a leaf: roles import it, it imports no role and no engine. Changing
// a name or an encoding here changes the network protocol.
package inference

import "strconv"

// Headers and the SSE comment of a paid request (the voucher header is in
// protocol/payment, the request MAC in reqauth).
const (
	// ReceiptHeader carries a response's signed receipt (receipt.Signed's
	// Encode) on a non-streamed response, sent only once the provider has
	// stored it.
	ReceiptHeader = "X-Agora-Receipt"
	// ReceiptComment prefixes the SSE comment line carrying a stream's
	// receipt, ahead of "data: [DONE]".
	ReceiptComment = ": agora-receipt "
	// RequestIDHeader carries a stream's request id, 32 hex digits (128
	// random bits) chosen by the gateway. When the stream does not end
	// cleanly (the gateway's client went away, or the connection between
	// them broke), the provider still bills what it generated, and the
	// gateway fetches that receipt at RequestReceiptPath. The id is the
	// only key: it is random, so only the gateway that chose it can ask.
	RequestIDHeader = "X-Agora-Request-Id"
)

// The provider's routes (ServeMux patterns) and the paths that reach them.
// The OpenAI routes (/v1/models, /v1/chat/completions, /v1/completions) are
// the OpenAI API's own.
const (
	// ProofRoute answers a receipt's inclusion proof (receipt.ProofJSON).
	ProofRoute = "GET /v1/receipts/{id}/proof"
	// RequestReceiptRoute answers the receipt of a stream by its request id
	// (RequestIDHeader), once the request is over.
	RequestReceiptRoute = "GET /v1/requests/{id}/receipt"
	// OpeningsRoute answers an epoch's sampled receipts (Openings).
	OpeningsRoute = "GET /v1/openings/{epoch}"
	// OpeningRoute answers one disputed receipt (Opening).
	OpeningRoute = "GET /v1/openings/{epoch}/{index}"
)

// ProofPath is the path of ProofRoute for a receipt id (64 hex digits).
func ProofPath(id string) string { return "/v1/receipts/" + id + "/proof" }

// RequestReceiptPath is the path of RequestReceiptRoute for a request id.
func RequestReceiptPath(requestID string) string { return "/v1/requests/" + requestID + "/receipt" }

// OpeningsPath is the path of OpeningsRoute for an epoch.
func OpeningsPath(epoch uint64) string { return "/v1/openings/" + strconv.FormatUint(epoch, 10) }

// OpeningPath is the path of OpeningRoute for receipt index of epoch.
func OpeningPath(epoch, index uint64) string {
	return OpeningsPath(epoch) + "/" + strconv.FormatUint(index, 10)
}
