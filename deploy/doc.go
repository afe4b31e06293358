// Package deploy holds the deployment files docs/DEPLOY.md describes: the
// nginx and haproxy configurations (nginx/sessiongate.conf,
// haproxy/sessiongate.cfg) and the systemd unit (systemd/sessiongate.service).
// It embeds them so that tests run what the operators copy: the e2e harness
// renders its nginx configuration from the nginx file and checks its haproxy
// configuration against the haproxy file, and this package's tests verify
// the unit with systemd-analyze and check that docs/DEPLOY.md quotes the
// files as they are.
package deploy
