package redisconn

import "strings"

// redactText replaces every occurrence of the given secrets in s with "***".
// go-redis errors do not carry passwords today; this keeps it that way even
// if a dependency starts quoting URLs or AUTH arguments in its errors.
func redactText(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}
