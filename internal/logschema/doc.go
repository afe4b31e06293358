// Package logschema is sessiongate's log schema in code: the event names a
// log line may carry as its message, their levels, and their fields with
// types. docs/LOGS.md documents the same table (a test keeps the two in
// step), and tests check every line the gateway and e2e suites produce
// against it with [Check].
package logschema
