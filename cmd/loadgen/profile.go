package main

import (
	"fmt"
	"time"
)

// profile bounds every count and duration of a run.
type profile struct {
	Name string `json:"name"`
	// MemLevels are the idle-connection counts at which memory is read, in
	// increasing order; the last one is also the heartbeat and
	// publish-to-user population. Fan-out to all is measured at the levels
	// fanoutLevels picks.
	MemLevels []int `json:"mem_levels"`
	// PingInterval is the gateway's WS_PING_INTERVAL during the idle and
	// heartbeat phases.
	PingInterval time.Duration `json:"ping_interval"`
	// HeartbeatWindow is how long idle CPU is measured (with and without
	// connections).
	HeartbeatWindow time.Duration `json:"heartbeat_window"`
	// HandshakeRun and HandshakeConc: each handshake-rate run.
	HandshakeRun  time.Duration `json:"handshake_run"`
	HandshakeConc int           `json:"handshake_concurrency"`
	// Fan-out to all runs in two modes at each of fanoutLevels: FanoutSerial
	// events one at a time (each waited for until every connection has
	// it), then FanoutRounds rounds of FanoutInFlight events published back
	// to back and waited for together. FanoutInFlight stays below the
	// gateway's send queue (WS_SEND_QUEUE, 64 frames), so no connection is
	// closed as a slow consumer.
	FanoutSerial   int `json:"fanout_serial_events"`
	FanoutInFlight int `json:"fanout_in_flight"`
	FanoutRounds   int `json:"fanout_rounds"`
	// UserPublishes publish-to-user requests, UserConc in flight.
	UserPublishes int `json:"user_publishes"`
	UserConc      int `json:"user_concurrency"`
	// Revocations sequential cross-instance revocations with RevokeOthers
	// other connections open on the receiving instance.
	Revocations  int `json:"revocations"`
	RevokeOthers int `json:"revoke_others"`
	// RedisHops raw PUBLISH->SUBSCRIBE samples.
	RedisHops int `json:"redis_hops"`

	// History phase: HistConns connections (one per user), HistPublishes
	// publishes to users round-robin with HistConc in flight, then
	// HistLatencySamples with one in flight; once with history on, once
	// off, and against the raw XADD+PUBLISH floor.
	HistConns          int `json:"history_conns"`
	HistPublishes      int `json:"history_publishes"`
	HistConc           int `json:"history_concurrency"`
	HistLatencySamples int `json:"history_latency_samples"`

	// Resume storm: StormConns connections (distinct users) on the killed
	// instance; each misses StormUserEvents events of its user's stream and
	// StormAllEvents broadcast events, then all reconnect to the other
	// instance with StormConc handshakes (TCP + HTTP upgrade) in flight.
	StormConns      int `json:"storm_conns"`
	StormUserEvents int `json:"storm_user_events"`
	StormAllEvents  int `json:"storm_all_events"`
	StormConc       int `json:"storm_concurrency"`
	// StormProfileSec is the length of the storm's CPU profile
	// (-storm-cpuprofile).
	StormProfileSec int `json:"storm_profile_s"`

	// Inbound phase: InboundConns clients (distinct users) send client
	// messages; InboundWorkers bin/worker processes echo them back. Each
	// closed-loop step of the sweep keeps InboundConcs[i] messages in
	// flight for InboundWarm (not measured) then InboundStep; the paced
	// step sends at half the round-trip peak for InboundPaced.
	InboundConns   int           `json:"inbound_conns"`
	InboundWorkers int           `json:"inbound_workers"`
	InboundConcs   []int         `json:"inbound_in_flight"`
	InboundWarm    time.Duration `json:"inbound_warm"`
	InboundStep    time.Duration `json:"inbound_step"`
	InboundPaced   time.Duration `json:"inbound_paced"`
}

func profileByName(name string) (profile, error) {
	switch name {
	case "small":
		return profile{
			Name: "small", MemLevels: []int{2000}, PingInterval: 5 * time.Second, HeartbeatWindow: 15 * time.Second,
			HandshakeRun: 5 * time.Second, HandshakeConc: 32,
			FanoutSerial: 40, FanoutInFlight: 32, FanoutRounds: 4, UserPublishes: 20000, UserConc: 32,
			Revocations: 1000, RevokeOthers: 2000, RedisHops: 2000,
			HistConns: 2000, HistPublishes: 10000, HistConc: 32, HistLatencySamples: 2000,
			StormConns: 2000, StormUserEvents: 3, StormAllEvents: 10, StormConc: 512, StormProfileSec: 3,
			InboundConns: 1000, InboundWorkers: 2, InboundConcs: []int{4, 16, 64, 256},
			InboundWarm: time.Second, InboundStep: 4 * time.Second, InboundPaced: 8 * time.Second,
		}, nil
	case "full":
		return profile{
			Name: "full", MemLevels: []int{10000, 19000}, PingInterval: 25 * time.Second, HeartbeatWindow: 60 * time.Second,
			HandshakeRun: 15 * time.Second, HandshakeConc: 64,
			FanoutSerial: 50, FanoutInFlight: 32, FanoutRounds: 5, UserPublishes: 50000, UserConc: 64,
			Revocations: 2000, RevokeOthers: 10000, RedisHops: 5000,
			HistConns: 10000, HistPublishes: 30000, HistConc: 64, HistLatencySamples: 5000,
			StormConns: 10000, StormUserEvents: 3, StormAllEvents: 10, StormConc: 512, StormProfileSec: 10,
			InboundConns: 5000, InboundWorkers: 2, InboundConcs: []int{4, 16, 64, 256, 1024},
			InboundWarm: 2 * time.Second, InboundStep: 8 * time.Second, InboundPaced: 15 * time.Second,
		}, nil
	}
	return profile{}, fmt.Errorf("loadgen: unknown profile %q (small|full)", name)
}

// fanoutLevels are the memory levels fan-out to all is measured at, largest
// first (the order the connections are closed in): every level of at least
// goalMemLevelFloor connections, or the last level when none is that large.
func (p profile) fanoutLevels() []int {
	var out []int
	for i := len(p.MemLevels) - 1; i >= 0; i-- {
		if l := p.MemLevels[i]; l >= goalMemLevelFloor || i == len(p.MemLevels)-1 {
			out = append(out, l)
		}
	}
	return out
}

// fanoutMode is one way of publishing to all: rounds of inFlight events,
// each round waited for until every connection has all of its events.
type fanoutMode struct {
	InFlight int
	Rounds   int
}

// fanoutModes are the modes run at each fan-out level: one event at a time,
// then FanoutInFlight at a time.
func (p profile) fanoutModes() []fanoutMode {
	return []fanoutMode{{InFlight: 1, Rounds: p.FanoutSerial}, {InFlight: p.FanoutInFlight, Rounds: p.FanoutRounds}}
}
