package gateway

import (
	"net/http"
	"time"

	"github.com/sessiongate/sessiongate/internal/httpclient"
)

// newWebhookClient is the login webhook's HTTP client: bounded phases, no
// redirects (a 307/308 would re-POST the user's credentials elsewhere).
func newWebhookClient(timeout time.Duration) *http.Client { return httpclient.New(timeout) }
