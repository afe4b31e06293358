package main

import "testing"

const commandStatsSample = "# Commandstats\r\n" +
	"cmdstat_get:calls=10,usec=50,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_info:calls=3,usec=90,usec_per_call=30.00,rejected_calls=0,failed_calls=0\r\n" +
	"cmdstat_xrange:calls=4,usec=40,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n" +
	"garbage line\r\n"

func TestParseCommandStats(t *testing.T) {
	got := parseCommandStats(commandStatsSample)
	want := map[string]cmdStat{"get": {10, 50}, "info": {3, 90}, "xrange": {4, 40}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: got %+v, want %+v", k, got[k], v)
		}
	}
}

func TestInfoField(t *testing.T) {
	info := "# Stats\r\ntotal_connections_received:7\r\ntotal_commands_processed:1234\r\n"
	if got := infoField(info, "total_commands_processed"); got != 1234 {
		t.Fatalf("got %d", got)
	}
	if got := infoField(info, "missing"); got != 0 {
		t.Fatalf("missing field: got %d", got)
	}
}

func TestDiffRedis(t *testing.T) {
	before := redisCounters{byCmd: map[string]cmdStat{"get": {10, 50}, "info": {3, 90}}, processed: 100}
	after := redisCounters{byCmd: map[string]cmdStat{"get": {15, 80}, "info": {5, 150}, "xrange": {4, 40}}, processed: 111}
	d := diffRedis(before, after)
	if d.Calls != 9 || d.Usec != 70 || d.ByCommand["get"] != 5 || d.ByCommand["xrange"] != 4 || d.ByCommand["info"] != 0 {
		t.Fatalf("diff = %+v", d)
	}
	if d.Processed != 9 { // 11 minus the two INFO commands of the snapshots
		t.Fatalf("processed = %d, want 9", d.Processed)
	}
	if got := topCommands(d.ByCommand, 1); got != "get=5" {
		t.Fatalf("topCommands = %q", got)
	}
}
