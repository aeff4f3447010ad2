package inference

import "github.com/agoranet/agora/receipt"

// Verification kinds: the value of Transcript.Verify, which says how a
// validator checks a transcript.
const (
	// VerifyExact: the native engine served it, so a re-execution must
	// reproduce OutputIDs and Logprobs bit for bit.
	VerifyExact = ""
	// VerifyTolerance: a backend that cannot be reproduced bit for bit (an
	// OpenAI-compatible server) served it, so validators compare its
	// reported log-probs with a re-execution within tolerances.
	VerifyTolerance = "tolerance"
)

// Transcript is what a verifier needs to re-execute a request: the provider
// records one per receipt and opens it when the receipt is sampled or
// disputed.
type Transcript struct {
	Model       string    `json:"model"`
	PromptIDs   []int     `json:"prompt_ids"`
	OutputIDs   []int     `json:"output_ids"`
	Logprobs    []float32 `json:"logprobs"`
	Temperature float64   `json:"temperature"`
	TopP        float64   `json:"top_p"`
	TopK        int       `json:"top_k"`
	MinP        float64   `json:"min_p"`
	RepeatPen   float64   `json:"repeat_penalty,omitempty"`
	FreqPen     float64   `json:"frequency_penalty,omitempty"`
	PresPen     float64   `json:"presence_penalty,omitempty"`
	Stop        []string  `json:"stop,omitempty"`
	Seed        uint64    `json:"seed"`
	MaxTokens   int       `json:"max_tokens"`
	Text        []byte    `json:"text"` // exact bytes (base64 in JSON: the output may not be valid UTF-8)
	// Cancelled: the generation was cut short (its client went away, or
	// the provider stopped) and the output is a prefix of the generation,
	// ending neither at EOS, a stop string nor MaxTokens. Validators check
	// every transcript as a prefix (each token's log-prob and draw), so a
	// partial one checks like a full one.
	Cancelled bool `json:"cancelled,omitempty"`

	// Verify is the verification kind (VerifyExact or VerifyTolerance). On
	// the tolerance path Pieces are the output tokens' bytes, Logprobs and
	// Top what the backend reported.
	Verify string   `json:"verify,omitempty"`
	Pieces [][]byte `json:"pieces,omitempty"`
	Top    [][]Alt  `json:"top,omitempty"`
}

// Alt is an alternative token a backend reported at one position: the
// token's bytes and its log-probability.
type Alt struct {
	Token   []byte  `json:"token"`
	Logprob float32 `json:"logprob"`
}

// Opening is one audited receipt with its inclusion proof and transcript:
// the answer of OpeningRoute, and an element of Openings.
type Opening struct {
	Proof      receipt.ProofJSON `json:"proof"`
	Transcript *Transcript       `json:"transcript"`
}

// Openings is the answer of OpeningsRoute: the epoch's receipt count, the
// indices its seed sampled, and the openings of those the provider holds.
type Openings struct {
	Epoch    uint64    `json:"epoch"`
	Count    uint64    `json:"count"`
	Indices  []uint64  `json:"indices"`
	Openings []Opening `json:"openings"`
}
