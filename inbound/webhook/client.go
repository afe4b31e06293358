package webhook

import (
	"net/http"
	"time"

	"github.com/sessiongate/sessiongate/internal/httpclient"
)

// NewClient is an HTTP client suited to the forwarder (internal/httpclient):
// every phase of a call bounded by timeout (the forwarder's context bounds
// the whole), TLS 1.2 at least, proxies from the environment, and no
// redirects followed. [New] uses it when given no client.
func NewClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return httpclient.New(timeout)
}
