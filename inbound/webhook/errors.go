package webhook

import "errors"

var (
	// ErrConfig means a [Config] cannot be used: no URL, a URL that is
	// not http(s), or no secret.
	ErrConfig = errors.New("webhook: bad configuration")
	// ErrStatus is wrapped by the error of a POST the application
	// answered with a status other than 2xx. 408, 429 and 5xx are retried;
	// any other is wrapped with [inbound.Permanent].
	ErrStatus = errors.New("webhook: unexpected status")
	// ErrBadResponse is wrapped by the (permanent) error of a 2xx response
	// the forwarder cannot use: larger than [MaxResponseBytes], or a JSON
	// body that does not parse.
	ErrBadResponse = errors.New("webhook: bad response")
	// ErrBadSignature means no signature in the header matches the body
	// and timestamp under the secret.
	ErrBadSignature = errors.New("webhook: bad signature")
	// ErrBadTimestamp means the timestamp header is not Unix seconds.
	ErrBadTimestamp = errors.New("webhook: bad timestamp")
	// ErrStaleTimestamp means the timestamp is further from now than the
	// tolerance: a replayed (or badly delayed) request.
	ErrStaleTimestamp = errors.New("webhook: timestamp outside the tolerance")
)
