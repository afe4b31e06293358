// Package webhook forwards the inbound queue's messages to an application
// over HTTP, for backends that are not written in Go: a [inbound.Handler]
// that POSTs each message as signed JSON to one URL and delivers the
// application's JSON reply back to the sender's session.
//
// The gateway runs it as an [inbound.Worker]'s Default handler when
// INBOUND_WEBHOOK_URL is set; the worker brings the retries with backoff,
// the dead letters and the graceful stop. Delivery is at least once: the
// application deduplicates on the X-Sessiongate-Id header (the message's
// queue id). An application verifies each request with
// [VerifySignature] (Go) or the recipe in docs/INBOUND.md.
package webhook
