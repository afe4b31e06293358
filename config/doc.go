// Package config turns environment variables and command-line flags into a
// validated [Config] for the gateway.
//
// Every setting is an environment variable (REDIS_URL, SESSION_SECRET, ...)
// and also a flag named after it in lower case with dashes (--redis-url,
// --session-secret); a flag wins over the variable, the variable over the
// default. An empty value means "not set". [Usage] lists them all, and
// .env.example at the repository root documents each one.
//
// [Load] parses and validates in one go and reports every problem at once,
// with messages that say which variable is wrong and what it should be.
// Production (GATEWAY_ENV=production) refuses weak or example secrets;
// development generates throw-away ones when none are given.
package config
