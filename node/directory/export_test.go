package directory

// Internals the external tests compare with.
const (
	UntrustedWeight    = untrustedWeight
	PublicAnswerBudget = publicAnswerBudget
)
