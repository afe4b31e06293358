package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// print writes the history phase's rows: each gateway run against the raw
// XADD+PUBLISH floor, and the bare PUBLISH floor.
func (h *historyResult) print(tw io.Writer) {
	fl := h.Floor
	for _, row := range []struct {
		name string
		g    publishRun
	}{{"history on", h.On}, {"history off", h.Off}} {
		g := row.g
		fmt.Fprintf(tw, "publish to user, %s: publishes/s @%d (c=%d) vs XADD+PUBLISH\t%.0f\t%.0f\t%.2f\t\n", row.name, h.Conns, g.Concurrency, g.PerSec, fl.PerSec, ratio(g.PerSec, fl.PerSec))
		fmt.Fprintf(tw, "  publish-to-receive p50 / p99 (ms)\t%.2f / %.2f\t%.2f / %.2f\t%.2f\t\n", g.Latency.P50, g.Latency.P99, fl.Latency.P50, fl.Latency.P99, ratio(g.Latency.P99, fl.Latency.P99))
		fmt.Fprintf(tw, "  one in flight p50 / p99 (ms)\t%.3f / %.3f\t%.3f / %.3f\t%.2f\t\n", g.Latency1.P50, g.Latency1.P99, fl.Latency1.P50, fl.Latency1.P99, ratio(g.Latency1.P99, fl.Latency1.P99))
		fmt.Fprintf(tw, "  CPU µs per publish (server+redis / redis)\t%.1f\t%.1f\t%.2f\t\n", g.MicrosPerPublish, fl.MicrosPerPublish, ratio(g.MicrosPerPublish, fl.MicrosPerPublish))
		fmt.Fprintf(tw, "  server / loadgen / others CPU (%% core)\t%s\t%s\t\t\n", g.CPU.triple(), fl.CPU.triple())
		fmt.Fprintf(tw, "  heap B/publish; collections (gateway)\t%.0f; %d\t\t\t\n", g.AllocPerPublish, g.Collections)
		if g.Error != "" {
			fmt.Fprintf(tw, "  error: %s\t\t\t\t\n", g.Error)
		}
	}
	fp := h.FloorPublish
	fmt.Fprintf(tw, "raw PUBLISH floor: publishes/s, p50 / p99 (ms)\t\t%.0f, %.2f / %.2f\t\t\n", fp.PerSec, fp.Latency.P50, fp.Latency.P99)
	fmt.Fprintf(tw, "  one in flight p50 / p99 (ms)\t\t%.3f / %.3f\t\t\n", fp.Latency1.P50, fp.Latency1.P99)
	fmt.Fprintf(tw, "history on / off: throughput, CPU per publish\t%.2f, %.2f\t\t\t\n", ratio(h.On.PerSec, h.Off.PerSec), ratio(h.On.MicrosPerPublish, h.Off.MicrosPerPublish))
	for _, e := range []string{fl.Error, fp.Error} {
		if e != "" {
			fmt.Fprintf(tw, "  floor error: %s\t\t\t\t\n", e)
		}
	}
}

// print writes the resume storm's rows.
func (s *stormResult) print(tw io.Writer) {
	fmt.Fprintf(tw, "resume storm: %d clients, %d + %d missed events each, c=%d\t\t\t\t\n", s.Conns, s.UserEvents, s.AllEvents, s.Concurrency)
	fmt.Fprintf(tw, "  first reconnect -> all live (s)\t%.3f\t\t\t\n", s.DurationSec)
	fmt.Fprintf(tw, "  client live p50 / p99 from first / own dial (ms)\t%.0f / %.0f, %.0f / %.0f\t\t\t\n", s.TimeToLive.P50, s.TimeToLive.P99, s.OwnTimeToLive.P50, s.OwnTimeToLive.P99)
	fmt.Fprintf(tw, "  events replayed (received / metric), per s\t%d / %.0f, %.0f\t\t\t\n", s.Replayed, s.ReplayedMetric, s.ReplayedPerSec)
	fmt.Fprintf(tw, "  live / not recovered / missing / dups / extra / wrong epoch / no barrier\t%d / %d / %d / %d / %d / %d / %d\t\t\t\n",
		s.Live, s.NotRecovered, s.Missing, s.Duplicates, s.Extra, s.WrongEpoch, s.BarrierMissing)
	fmt.Fprintf(tw, "  dial retries / failed\t%d / %d\t\t\t\n", s.DialRetries, s.DialFailed)
	fmt.Fprintf(tw, "  gateway / redis CPU (s), loadgen / others (%% core)\t%.2f / %.2f, %.0f / %.0f\t\t\t\n", s.CPU.ServerSec, s.CPU.RedisSec, s.CPU.LoadgenPctCore, s.CPU.OtherPctCores)
	fmt.Fprintf(tw, "  redis calls (per client), commands sent, busy ms\t%d (%.1f), %d, %.0f\t\t\t\n", s.Redis.Calls, float64(s.Redis.Calls)/float64(max(s.Conns, 1)), s.Redis.Processed, float64(s.Redis.Usec)/1000)
	fmt.Fprintf(tw, "  redis calls by command\t%s\t\t\t\n", topCommands(s.Redis.ByCommand, 8))
	if s.FirstDialErr != "" {
		fmt.Fprintf(tw, "  first dial error: %s\t\t\t\t\n", s.FirstDialErr)
	}
	if s.Error != "" {
		fmt.Fprintf(tw, "  error: %s\t\t\t\t\n", s.Error)
	}
}

// topCommands is "name=calls" for the k most called commands.
func topCommands(m map[string]int64, k int) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		if m[a] != m[b] {
			return int(m[b] - m[a])
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, 0, k)
	for _, n := range names[:min(k, len(names))] {
		parts = append(parts, fmt.Sprintf("%s=%d", n, m[n]))
	}
	return strings.Join(parts, " ")
}
