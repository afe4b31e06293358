package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// inboundRoundTripRatio is the throughput goal: round trips per
// second through the workers at least this share of the floor's.
const inboundRoundTripRatio = 0.7

// inboundPacedP99 is the latency goal: round trip p99 at half the
// peak rate, in milliseconds.
const inboundPacedP99 = 5.0

// print writes the inbound phase's rows: each sweep step, the paced
// steps, the ratios to the floor.
func (in *inboundResult) print(tw io.Writer) {
	fmt.Fprintf(tw, "inbound: %d clients, %d workers, %d partitions\t\t\t\t\n", in.Conns, in.Workers, in.Partitions)
	sweep := func(name string, g, f []inboundStep) {
		for i := range max(len(g), len(f)) {
			var gs, fs inboundStep
			if i < len(g) {
				gs = g[i]
			}
			if i < len(f) {
				fs = f[i]
			}
			fmt.Fprintf(tw, "  %s, %d in flight: msgs/s\t%.0f\t%.0f\t%.2f\t\n", name, max(gs.Conc, fs.Conc), gs.PerSec, fs.PerSec, ratio(gs.PerSec, fs.PerSec))
			fmt.Fprintf(tw, "    send->ack p50 / p99 (ms)\t%s\t%s\t\t\n", pcts(gs.SendToAck), pcts(fs.SendToAck))
			if gs.SendToReply.N+fs.SendToReply.N > 0 {
				fmt.Fprintf(tw, "    send->reply (floor: ->read) p50 / p99 (ms)\t%s\t%s\t\t\n", pcts(gs.SendToReply), pcts(fs.SendToReply))
			}
			fmt.Fprintf(tw, "    servers CPU µs/msg; servers / loadgen / others %% core\t%.1f; %s\t%.1f; %s\t\t\n", gs.MicrosPerMsg, gs.CPU.triple(), fs.MicrosPerMsg, fs.CPU.triple())
			fmt.Fprintf(tw, "    CPU µs/msg: gateway / workers / redis (gateway A; loadgen)\t%s\t%s\t\t\n", gs.PerMsg, fs.PerMsg)
			for _, s := range []inboundStep{gs, fs} {
				if note := s.note(); note != "" {
					fmt.Fprintf(tw, "    %s: %s\t\t\t\t\n", s.Mode, note)
				}
			}
		}
	}
	sweep("enqueue (ack) vs XADD", in.Enqueue, in.FloorEnqueue)
	sweep("round trip vs XADD+XREADGROUP+XACK", in.RoundTrip, in.FloorRoundTrip)
	if in.Paced != nil || in.FloorPaced != nil {
		var g, f inboundStep
		if in.Paced != nil {
			g = *in.Paced
		}
		if in.FloorPaced != nil {
			f = *in.FloorPaced
		}
		fmt.Fprintf(tw, "  paced at half its peak: target msgs/s (per conn)\t%.0f (%.1f)\t%.0f\t\t\n", g.Rate, g.PerClientRate, f.Rate)
		fmt.Fprintf(tw, "    send->ack p50 / p99 (ms)\t%s\t%s\t\t\n", pcts(g.SendToAck), pcts(f.SendToAck))
		fmt.Fprintf(tw, "    send->reply (floor: ->read) p50 / p99 (ms)\t%s\t%s\t\t\n", pcts(g.SendToReply), pcts(f.SendToReply))
		fmt.Fprintf(tw, "    pacer lag p99 (ms); servers / loadgen / others %% core\t%.2f; %s\t%.2f; %s\t\t\n", g.SendLag.P99, g.CPU.triple(), f.SendLag.P99, f.CPU.triple())
		fmt.Fprintf(tw, "    CPU µs/msg: gateway / workers / redis (gateway A; loadgen)\t%s\t%s\t\t\n", g.PerMsg, f.PerMsg)
		for _, s := range []inboundStep{g, f} {
			if note := s.note(); note != "" {
				fmt.Fprintf(tw, "    %s: %s\t\t\t\t\n", s.Mode, note)
			}
		}
	}
	if s := in.Profiled; s != nil {
		fmt.Fprintf(tw, "  profiled round trip, %d in flight: msgs/s\t%.0f\t\t\t\n", s.Conc, s.PerSec)
	}
	if gp, ok := peakOf(in.RoundTrip); ok && gp.Redis != nil {
		fmt.Fprintf(tw, "  redis calls per round trip at the peak\t%.1f\t\t\t\n", float64(gp.Redis.Calls)/float64(max(gp.Replied, 1)))
		fmt.Fprintf(tw, "  redis calls by command\t%s\t\t\t\n", topCommands(gp.Redis.ByCommand, 10))
	}
	if in.Error != "" {
		fmt.Fprintf(tw, "  error: %s\t\t\t\t\n", in.Error)
	}
}

// note names what went wrong in a step, or "".
func (s inboundStep) note() string {
	var parts []string
	if s.Error != "" {
		parts = append(parts, s.Error)
	}
	for _, code := range slices.Sorted(maps.Keys(s.Errors)) {
		parts = append(parts, fmt.Sprintf("%d refused with %s", s.Errors[code], code))
	}
	return strings.Join(parts, "; ")
}

func (c cpuPerMsg) String() string {
	return fmt.Sprintf("%.0f / %.0f / %.0f (%.0f; %.0f)", c.Gateway, c.Workers, c.Redis, c.OtherGateways, c.Loadgen)
}

func pcts(l latency) string {
	if l.N == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f / %.2f", l.P50, l.P99)
}

// triple is "servers / loadgen / others" CPU in percent of a core.
func (c inboundCPU) triple() string {
	return fmt.Sprintf("%.0f / %.0f / %.0f", c.ServersPctCore, c.LoadgenPctCore, c.OthersPctCore)
}

// goals judges the two inbound goals.
func (in *inboundResult) goals() []goal {
	gp, gok := peakOf(in.RoundTrip)
	fp, fok := peakOf(in.FloorRoundTrip)
	ep, _ := peakOf(in.Enqueue)
	xp, _ := peakOf(in.FloorEnqueue)
	r := ratio(gp.PerSec, fp.PerSec)
	out := []goal{goal{
		Name:   "inbound round trips per second (client -> queue -> worker -> client) vs raw XADD + XREADGROUP + XACK",
		Target: fmt.Sprintf(">= %.0f%%", 100*inboundRoundTripRatio),
		Measured: fmt.Sprintf("%.0f/s (%d in flight) vs %.0f/s (%d in flight) = %.0f%% (enqueue: %.0f/s vs XADD %.0f/s = %.0f%%)",
			gp.PerSec, gp.Conc, fp.PerSec, fp.Conc, 100*r, ep.PerSec, xp.PerSec, 100*ratio(ep.PerSec, xp.PerSec)),
		Value: r, Limit: inboundRoundTripRatio, AtLeast: true, Valid: gok && fok,
	}.judged()}
	if s := in.Paced; s != nil {
		fl := ""
		if f := in.FloorPaced; f != nil {
			fl = fmt.Sprintf("; floor at %.0f/s: p99 %.2f ms", f.Rate, f.SendToReply.P99)
		}
		out = append(out, goal{
			Name:   "inbound round trip p99 at half the peak rate",
			Target: fmt.Sprintf("<= %.0f ms", inboundPacedP99),
			Measured: fmt.Sprintf("%.2f ms at %.0f/s (p50 %.2f ms, %d round trips)%s",
				s.SendToReply.P99, s.Rate, s.SendToReply.P50, s.SendToReply.N, fl),
			Value: s.SendToReply.P99, Unit: " ms", Limit: inboundPacedP99,
			Valid: s.Error == "" && s.SendToReply.N > 0,
		}.judged())
	}
	return out
}
