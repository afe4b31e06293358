package config

// The example secrets shipped in .env.example. Production refuses them, so a
// copied example file can never guard real sessions.
const (
	// ExampleSessionSecret is the SESSION_SECRET value in .env.example.
	ExampleSessionSecret = "EXAMPLE-session-secret-replace-me-0123456789abcdef"
	// ExampleEncryptionKey is the SESSION_ENCRYPTION_KEY value in .env.example.
	ExampleEncryptionKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)
