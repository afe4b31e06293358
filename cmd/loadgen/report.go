package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// results is everything one run measured; it is written as JSON.
type results struct {
	Profile     profile          `json:"profile"`
	Machine     machine          `json:"machine"`
	Started     time.Time        `json:"started"`
	DurationSec float64          `json:"duration_s"`
	Gateway     serverSide       `json:"gateway"`
	Floor       serverSide       `json:"floor"`
	RedisHop    latency          `json:"redis_hop_floor"`
	Revocation  revocationResult `json:"revocation"`
	History     *historyResult   `json:"history,omitempty"`
	Resume      *stormResult     `json:"resume,omitempty"`
	Inbound     *inboundResult   `json:"inbound,omitempty"`
	Goals       []goal           `json:"goals"`
	Errors      []string         `json:"errors,omitempty"`
}

type machine struct {
	NProc     int    `json:"nproc"`
	CPUModel  string `json:"cpu_model"`
	GoVersion string `json:"go_version"`
	Pinned    string `json:"pinning"`
	NoFile    uint64 `json:"nofile_soft_limit"`
	// LoadStart and LoadEnd are /proc/loadavg (1, 5, 15 min) around the run.
	LoadStart string `json:"loadavg_start"`
	LoadEnd   string `json:"loadavg_end"`
}

// goal is one goal of the issue, judged on this run.
type goal struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
	// Value is the judged figure (a ratio to its floor where the goal has
	// one), in Unit; Limit is the goal's bound: Value >= Limit when AtLeast,
	// else Value <= Limit.
	Value   float64 `json:"value"`
	Unit    string  `json:"unit,omitempty"`
	Limit   float64 `json:"limit"`
	AtLeast bool    `json:"at_least,omitempty"`
	// Valid is false when the run broke a condition other than the figure
	// (a failed handshake, a missed event, too few connections, ...).
	Valid bool `json:"valid"`
	// Check marks a figure judged against a goal's limit that is not a goal
	// of the gateway (a floor held to the gateway's goal): printed as
	// "check: within"/"check: over" instead of "met"/"GAP".
	Check bool `json:"check,omitempty"`
}

// meets reports whether v is within the goal's limit.
func (g goal) meets(v float64) bool {
	if g.AtLeast {
		return v >= g.Limit
	}
	return v <= g.Limit
}

// mark is how a goal's outcome is printed: met or GAP, and for a check
// (a floor held to a goal's limit) within or over.
func mark(check, met bool) string {
	switch {
	case check && met:
		return "check: within"
	case check:
		return "check: over"
	case met:
		return "met"
	}
	return "GAP"
}

// judged fills Met from Value and Valid.
func (g goal) judged() goal {
	g.Met = g.Valid && g.meets(g.Value)
	return g
}

func machineInfo(pinned string, nofile uint64) machine {
	m := machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version(), Pinned: pinned, NoFile: nofile, LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "model name":
				if m.CPUModel == "" {
					m.CPUModel = strings.TrimSpace(v)
				}
			case "processor":
				n++
			}
		}
		if n > 0 {
			m.NProc = n // NumCPU is 1 once this process is pinned
		}
	}
	return m
}

const kib = 1024.0

// ranSides reports whether the gateway or floor phase ran.
func (res *results) ranSides() bool { return len(res.Gateway.Memory)+len(res.Floor.Memory) > 0 }

// judge fills res.Goals from the figures of the phases that ran.
func (res *results) judge() {
	if res.ranSides() {
		res.judgeSides()
	}
	if res.Revocation.Revocations > 0 {
		res.judgeRevocation()
	}
	if h := res.History; h != nil {
		res.Goals = append(res.Goals, goal{
			Name:   "history's cost on publish throughput (gateway publish API, history on vs off)",
			Target: "<= 25%",
			Measured: fmt.Sprintf("%.0f/s on vs %.0f/s off = %.0f%% cost (floors: XADD+PUBLISH %.0f/s, PUBLISH %.0f/s)",
				h.On.PerSec, h.Off.PerSec, h.costPct(), h.Floor.PerSec, h.FloorPublish.PerSec),
			Value: h.costPct(), Unit: "%", Limit: 25,
			Valid: h.Off.PerSec > 0 && h.On.Error == "" && h.Off.Error == "",
		}.judged())
	}
	if s := res.Resume; s != nil {
		res.Goals = append(res.Goals, goal{
			Name:   "resume storm: first reconnect to all live, no event missed or doubled",
			Target: "<= 5 s at 10k connections",
			Measured: fmt.Sprintf("%.2f s for %d of %d clients (%d events replayed, %.0f/s; missing %d, duplicates %d, not recovered %d)",
				s.DurationSec, s.Live, s.Conns, s.Replayed, s.ReplayedPerSec, s.Missing, s.Duplicates, s.NotRecovered),
			Value: s.DurationSec, Unit: " s", Limit: 5,
			Valid: s.Conns >= 10000 && s.Live == s.Conns && s.Missing == 0 && s.Duplicates == 0 &&
				s.Extra == 0 && s.WrongEpoch == 0 && s.BarrierMissing == 0,
		}.judged())
	}
	if in := res.Inbound; in != nil {
		res.Goals = append(res.Goals, in.goals()...)
	}
}

// Goals of issue 14, each a ratio to the floor measured in the same run.
const (
	goalRSSKiB    = 7.5  // RSS per idle authenticated connection
	goalHandshake = 0.80 // authenticated handshakes / bare upgrades
	goalFanout    = 0.95 // fan-out deliveries/s / bare fan-out floor
	goalRevokeP99 = 3.0  // revocation p99 / raw pub/sub hop p99
	goalRevokeP50 = 6.0  // revocation p50 / raw pub/sub hop p50
	// Not the issue's: revocation latency over the same path built of bare
	// parts (HTTP -> PUBLISH + DEL, SUBSCRIBE -> close), at p50 and p99; the
	// inverse of the handshake goal's 0.80.
	goalRevokePathFloor = 1.25
	goalHeartbeatPct    = 5.0 // % of a core for 19k idle connections
	goalRevokeOthers    = 10000
	goalMemLevelFloor   = 10000 // memory is judged at every level of at least this many
)

func (res *results) judgeSides() {
	g, f := res.Gateway, res.Floor
	for i, memG := range g.Memory {
		if memG.Conns < goalMemLevelFloor && i < len(g.Memory)-1 {
			continue // the small profile's only level is judged; the full profile's 10k and 19k
		}
		var memF memPoint
		if i < len(f.Memory) {
			memF = f.Memory[i]
		}
		res.Goals = append(res.Goals, goal{
			Name:   fmt.Sprintf("RSS per idle authenticated connection @%d", memG.Conns),
			Target: fmt.Sprintf("<= %.1f KiB", goalRSSKiB),
			Measured: fmt.Sprintf("RSS %.1f KiB, heap %.1f KiB (floor: RSS %.1f, heap %.1f KiB)",
				memG.RSSPerConn/kib, memG.HeapPerConn/kib, memF.RSSPerConn/kib, memF.HeapPerConn/kib),
			Value: memG.RSSPerConn / kib, Unit: " KiB", Limit: goalRSSKiB,
			Valid: memG.Conns > 0,
		}.judged())
	}
	if hb := g.Heartbeat; hb != nil {
		pct, how := hb.Projected19kPct, "projected from"
		if hb.Conns >= 19000 && hb.PingInterval == "25s" {
			pct, how = hb.CPU.ServerPctCore, "measured at"
		}
		res.Goals = append(res.Goals, goal{
			Name:   "19k idle connections with heartbeats (25 s ping)",
			Target: fmt.Sprintf("gateway CPU <= %.0f%% of a core", goalHeartbeatPct),
			Measured: fmt.Sprintf("%.2f%% of a core (%s %d conns, ping %s: %.2f%%, idle %.2f%%, %.1f µs/ping)",
				pct, how, hb.Conns, hb.PingInterval, hb.CPU.ServerPctCore, g.IdleCPU.ServerPctCore, hb.MicrosPerPing),
			Value: pct, Unit: "%", Limit: goalHeartbeatPct, Valid: hb.Conns > 0,
		}.judged())
	}
	hr := ratio(g.Handshake.PerSec, f.Handshake.PerSec)
	res.Goals = append(res.Goals, goal{
		Name:   "authenticated handshakes / bare upgrade floor",
		Target: fmt.Sprintf(">= %.2f", goalHandshake),
		Measured: fmt.Sprintf("%.0f/s vs %.0f/s = %.2f (CPU per handshake: %.0f vs %.0f µs = %.0f%% efficiency)",
			g.Handshake.PerSec, f.Handshake.PerSec, hr, cpuPer(g.Handshake), cpuPer(f.Handshake), 100*ratio(cpuPer(f.Handshake), cpuPer(g.Handshake))),
		Value: hr, Limit: goalHandshake, AtLeast: true,
		Valid: g.Handshake.Failed == 0 && f.Handshake.PerSec > 0,
	}.judged())
	for _, ga := range g.FanoutAll {
		res.Goals = append(res.Goals, fanoutGoal(ga, matchFanout(f.FanoutAll, ga)))
	}
}

// fanoutGoal judges one fan-out-to-all run (gateway ga, floor fa at the same
// level and in-flight count). It is named by level and mode, so the
// repetitions aggregate it by name; it is valid only when both sides
// delivered every event to the same number of connections.
func fanoutGoal(ga, fa fanoutResult) goal {
	fr := ratio(ga.PerSec, fa.PerSec)
	conns := ""
	if ga.Conns != fa.Conns || ga.Conns != ga.Level {
		conns = fmt.Sprintf(", %d vs %d conns open", ga.Conns, fa.Conns)
	}
	return goal{
		Name:   fanoutName(ga.Level, ga.InFlight) + " / bare fan-out floor",
		Target: fmt.Sprintf(">= %.2f", goalFanout),
		Measured: fmt.Sprintf("%.0f/s vs %.0f/s = %.2f (CPU per delivery: %.1f vs %.1f s/M = %.0f%% efficiency%s)",
			ga.PerSec, fa.PerSec, fr, ga.CPUSecPerM, fa.CPUSecPerM, 100*ratio(fa.CPUSecPerM, ga.CPUSecPerM), conns),
		Value: fr, Limit: goalFanout, AtLeast: true,
		Valid: ga.Error == "" && fa.Error == "" && fa.PerSec > 0 && ga.Conns > 0 && ga.Conns == fa.Conns,
	}.judged()
}

// fanoutName names a fan-out-to-all run: "fan-out to all @19000, 32 in flight".
func fanoutName(level, inFlight int) string {
	return fmt.Sprintf("fan-out to all @%d, %d in flight", level, inFlight)
}

// matchFanout is the run of rs at ga's level and in-flight count, or a zero
// result when that side did not run it.
func matchFanout(rs []fanoutResult, ga fanoutResult) fanoutResult {
	for _, r := range rs {
		if r.Level == ga.Level && r.InFlight == ga.InFlight {
			return r
		}
	}
	return fanoutResult{}
}

func (res *results) judgeRevocation() {
	rv := res.Revocation
	valid := rv.OthersOpen >= goalRevokeOthers && rv.TimedOut == 0 && rv.WrongCode == 0 && res.RedisHop.N > 0
	for _, q := range []struct {
		name     string
		got, hop float64
		limit    float64
	}{{"p99", rv.Latency.P99, res.RedisHop.P99, goalRevokeP99}, {"p50", rv.Latency.P50, res.RedisHop.P50, goalRevokeP50}} {
		rr := ratio(q.got, q.hop)
		res.Goals = append(res.Goals, goal{
			Name:   fmt.Sprintf("cross-instance revocation %s / raw pub/sub hop %s", q.name, q.name),
			Target: fmt.Sprintf("<= %.0fx, with %d other conns open", q.limit, goalRevokeOthers),
			Measured: fmt.Sprintf("%.2f ms vs %.2f ms = %.1fx (%d revocations, %d other conns open)",
				q.got, q.hop, rr, rv.Latency.N, rv.OthersOpen),
			Value: rr, Unit: "x", Limit: q.limit, Valid: valid && rr > 0,
		}.judged())
	}
	pf := rv.PathFloor
	if pf == nil {
		return
	}
	// The same revocations through the bare parts (revocationFloor): the
	// issue's p99 goal held to them says whether the bare parts meet it on
	// this machine, and the gateway's latency over theirs is what the
	// gateway adds.
	pfValid := pf.OthersOpen >= goalRevokeOthers && pf.TimedOut == 0 && pf.WrongCode == 0 && pf.Errors == 0 && res.RedisHop.N > 0
	rr := ratio(pf.Latency.P99, res.RedisHop.P99)
	res.Goals = append(res.Goals, goal{
		Name:   "check: revocation path floor p99 / raw pub/sub hop p99 (the p99 goal held to bare parts)",
		Target: fmt.Sprintf("<= %.0fx", goalRevokeP99),
		Measured: fmt.Sprintf("%.2f ms vs %.2f ms = %.1fx (%d revocations, %d other conns open)",
			pf.Latency.P99, res.RedisHop.P99, rr, pf.Latency.N, pf.OthersOpen),
		Value: rr, Unit: "x", Limit: goalRevokeP99, Valid: pfValid && rr > 0, Check: true,
	}.judged())
	for _, q := range []struct {
		name    string
		got, pf float64
	}{{"p99", rv.Latency.P99, pf.Latency.P99}, {"p50", rv.Latency.P50, pf.Latency.P50}} {
		rr := ratio(q.got, q.pf)
		res.Goals = append(res.Goals, goal{
			Name:   fmt.Sprintf("proposed: cross-instance revocation %s / revocation path floor %s", q.name, q.name),
			Target: fmt.Sprintf("<= %.2fx", goalRevokePathFloor),
			Measured: fmt.Sprintf("%.2f ms vs %.2f ms = %.2fx",
				q.got, q.pf, rr),
			Value: rr, Unit: "x", Limit: goalRevokePathFloor, Valid: valid && pfValid && rr > 0,
		}.judged())
	}
}

// printTable writes the human summary.
func (res *results) printTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "\nsessiongate load profile %q — %d cores, %s, %s, pinning: %s\nload average at start %s, at end %s (others' CPU below: other workloads on the machine)\n\n",
		res.Profile.Name, res.Machine.NProc, res.Machine.CPUModel, res.Machine.GoVersion, res.Machine.Pinned, res.Machine.LoadStart, res.Machine.LoadEnd)
	fmt.Fprintln(tw, "figure\tgateway\tfloor\tratio\t")
	if res.ranSides() {
		res.printSides(tw)
	}
	if res.Revocation.Revocations > 0 {
		res.printRevocation(tw)
	}
	if res.History != nil {
		res.History.print(tw)
	}
	if res.Resume != nil {
		res.Resume.print(tw)
	}
	if res.Inbound != nil {
		res.Inbound.print(tw)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "\ngoals:")
	for _, gl := range res.Goals {
		fmt.Fprintf(w, "  [%s] %s (%s): %s\n", mark(gl.Check, gl.Met), gl.Name, gl.Target, gl.Measured)
	}
	for _, e := range res.Errors {
		fmt.Fprintln(w, "error:", e)
	}
}

func (res *results) printSides(tw io.Writer) {
	g, f := res.Gateway, res.Floor
	for i := range min(len(g.Memory), len(f.Memory)) {
		mg, mf := g.Memory[i], f.Memory[i]
		fmt.Fprintf(tw, "RSS per idle conn @%d (KiB)\t%.2f\t%.2f\t%.2f\t\n", mg.Conns, mg.RSSPerConn/kib, mf.RSSPerConn/kib, ratio(mg.RSSPerConn, mf.RSSPerConn))
		fmt.Fprintf(tw, "heap per idle conn @%d (KiB)\t%.2f\t%.2f\t%.2f\t\n", mg.Conns, mg.HeapPerConn/kib, mf.HeapPerConn/kib, ratio(mg.HeapPerConn, mf.HeapPerConn))
	}
	fmt.Fprintf(tw, "handshakes/s (c=%d)\t%.0f\t%.0f\t%.2f\t\n", g.Handshake.Concurrency, g.Handshake.PerSec, f.Handshake.PerSec, ratio(g.Handshake.PerSec, f.Handshake.PerSec))
	fmt.Fprintf(tw, "  connect p50 / p99 (ms)\t%.2f / %.2f\t%.2f / %.2f\t%.2f\t\n", g.Handshake.Latency.P50, g.Handshake.Latency.P99, f.Handshake.Latency.P50, f.Handshake.Latency.P99, ratio(g.Handshake.Latency.P99, f.Handshake.Latency.P99))
	fmt.Fprintf(tw, "  server / loadgen / others CPU (%% core)\t%s\t%s\t\t\n", g.Handshake.CPU.triple(), f.Handshake.CPU.triple())
	type row struct {
		name string
		g, f fanoutResult
	}
	var rows []row
	for _, ga := range g.FanoutAll {
		rows = append(rows, row{fanoutName(ga.Level, ga.InFlight) + ": deliveries/s", ga, matchFanout(f.FanoutAll, ga)})
	}
	rows = append(rows, row{fmt.Sprintf("publish to user: deliveries/s @%d", g.FanoutUser.Conns), g.FanoutUser, f.FanoutUser})
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2f\t\n", row.name, row.g.PerSec, row.f.PerSec, ratio(row.g.PerSec, row.f.PerSec))
		if row.g.Conns != row.f.Conns {
			fmt.Fprintf(tw, "  connections open\t%d\t%d\t\t\n", row.g.Conns, row.f.Conns)
		}
		fmt.Fprintf(tw, "  end-to-end p50 / p99 (ms)\t%.2f / %.2f\t%.2f / %.2f\t%.2f\t\n", row.g.Latency.P50, row.g.Latency.P99, row.f.Latency.P50, row.f.Latency.P99, ratio(row.g.Latency.P99, row.f.Latency.P99))
		fmt.Fprintf(tw, "  server CPU-s per 1M deliveries\t%.2f\t%.2f\t%.2f\t\n", row.g.CPUSecPerM, row.f.CPUSecPerM, ratio(row.g.CPUSecPerM, row.f.CPUSecPerM))
		fmt.Fprintf(tw, "  server / loadgen / others CPU (%% core)\t%s\t%s\t\t\n", row.g.CPU.triple(), row.f.CPU.triple())
		for _, e := range []struct{ side, err string }{{"gateway", row.g.Error}, {"floor", row.f.Error}} {
			if e.err != "" {
				fmt.Fprintf(tw, "  %s error: %s\t\t\t\t\n", e.side, e.err)
			}
		}
	}
	if hb := g.Heartbeat; hb != nil {
		fmt.Fprintf(tw, "heartbeats: CPU %% core @%d, ping %s\t%.2f\t%.2f (idle)\t\t\n", hb.Conns, hb.PingInterval, hb.CPU.ServerPctCore, g.IdleCPU.ServerPctCore)
		fmt.Fprintf(tw, "  µs CPU per ping / 19k@25s proj. %%\t%.1f / %.2f\t\t\t\n", hb.MicrosPerPing, hb.Projected19kPct)
	}
}

func (res *results) printRevocation(tw io.Writer) {
	rv := res.Revocation
	fmt.Fprintf(tw, "revocation A->B p50 (ms)\t%.3f\t%.3f\t%.2f\t\n", rv.Latency.P50, res.RedisHop.P50, ratio(rv.Latency.P50, res.RedisHop.P50))
	fmt.Fprintf(tw, "revocation A->B p90 (ms)\t%.3f\t%.3f\t%.2f\t\n", rv.Latency.P90, res.RedisHop.P90, ratio(rv.Latency.P90, res.RedisHop.P90))
	fmt.Fprintf(tw, "revocation A->B p99 (ms)\t%.3f\t%.3f\t%.2f\t\n", rv.Latency.P99, res.RedisHop.P99, ratio(rv.Latency.P99, res.RedisHop.P99))
	fmt.Fprintf(tw, "  (n=%d, %d others open, API p50 %.3f ms)\t\t\t\t\n", rv.Latency.N, rv.OthersOpen, rv.APILatency.P50)
	pf := rv.PathFloor
	if pf != nil {
		fmt.Fprintf(tw, "  of which DELETE -> event on the bus, p50 / p99 (ms)\t%.3f / %.3f\t%.3f / %.3f (path floor)\t%.2f / %.2f\t\n",
			rv.ToBus.P50, rv.ToBus.P99, pf.ToBus.P50, pf.ToBus.P99, ratio(rv.ToBus.P50, pf.ToBus.P50), ratio(rv.ToBus.P99, pf.ToBus.P99))
		fmt.Fprintf(tw, "  and bus -> close frame, p50 / p99 (ms)\t%.3f / %.3f\t%.3f / %.3f (path floor)\t%.2f / %.2f\t\n",
			rv.BusToClose.P50, rv.BusToClose.P99, pf.BusToClose.P50, pf.BusToClose.P99, ratio(rv.BusToClose.P50, pf.BusToClose.P50), ratio(rv.BusToClose.P99, pf.BusToClose.P99))
	}
	floorHeap := ""
	if pf != nil {
		floorHeap = pf.heapFigures() + " (path floor)"
	}
	fmt.Fprintf(tw, "  heap B/revocation A / B; collections A / B\t%s\t%s\t\t\n", rv.heapFigures(), floorHeap)
	floorSlow := ""
	if pf != nil {
		floorSlow = pf.Slowest.String() + " (path floor)"
	}
	fmt.Fprintf(tw, "  slowest 1%%: n, from (ms); in densest window; at (s)\t%s\t%s\t\t\n", rv.Slowest, floorSlow)
	if pf != nil {
		fmt.Fprintf(tw, "revocation A->B p50 (ms) vs path floor\t%.3f\t%.3f\t%.2f\t\n", rv.Latency.P50, pf.Latency.P50, ratio(rv.Latency.P50, pf.Latency.P50))
		fmt.Fprintf(tw, "revocation A->B p90 (ms) vs path floor\t%.3f\t%.3f\t%.2f\t\n", rv.Latency.P90, pf.Latency.P90, ratio(rv.Latency.P90, pf.Latency.P90))
		fmt.Fprintf(tw, "revocation A->B p99 (ms) vs path floor\t%.3f\t%.3f\t%.2f\t\n", rv.Latency.P99, pf.Latency.P99, ratio(rv.Latency.P99, pf.Latency.P99))
		fmt.Fprintf(tw, "  path floor p50 / p99 over the hop's\t\t%.2f / %.2f\t\t\n", ratio(pf.Latency.P50, res.RedisHop.P50), ratio(pf.Latency.P99, res.RedisHop.P99))
		for _, c := range []struct {
			name     string
			got, bar float64
		}{{"A + B", rv.ServerCPUSec, pf.ServerCPUSec}, {"A", rv.CPUSecA, pf.CPUSecA}, {"B", rv.CPUSecB, pf.CPUSecB}, {"redis-server", rv.RedisCPUSec, pf.RedisCPUSec}} {
			g, f := perRevocationMicros(c.got, rv), perRevocationMicros(c.bar, *pf)
			fmt.Fprintf(tw, "  CPU µs per revocation, %s\t%.0f\t%.0f\t%.2f\t\n", c.name, g, f, ratio(g, f))
		}
	}
}

// String is "<n>, >= <min> ms; <in window> in <window> ms; <first>-<last> s".
func (s slowest) String() string {
	return fmt.Sprintf("%d, >= %.2f; %d in %.0f ms; %.2f-%.2f", s.N, s.MinMs, s.InWindow, s.WindowMs, s.FirstAtMs/1e3, s.LastAtMs/1e3)
}

// heapFigures is "<A's> / <B's> heap bytes per revocation; <A's> / <B's>
// collections".
func (rv revocationResult) heapFigures() string {
	return fmt.Sprintf("%.0f / %.0f; %d / %d", rv.AllocPerRevocationA, rv.AllocPerRevocationB, rv.CollectionsA, rv.CollectionsB)
}

// perRevocationMicros is sec CPU seconds per revocation of rv, in µs.
func perRevocationMicros(sec float64, rv revocationResult) float64 {
	return sec / float64(max(rv.Latency.N, 1)) * 1e6
}

// writeJSON writes the repetitions and the summary to <dir>/<profile>.json.
func (rep *report) writeJSON(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, rep.Profile.Name+".json")
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, append(b, '\n'), 0o644)
}

// triple is "server / loadgen / others" CPU in percent of a core.
func (u cpuUse) triple() string {
	return fmt.Sprintf("%.0f / %.0f / %.0f", u.ServerPctCore, u.LoadgenPctCore, u.OtherPctCores)
}

// cpuPer is the server's CPU microseconds per completed handshake.
func cpuPer(h handshakeResult) float64 {
	return 1e6 * h.CPU.ServerSec / float64(max(h.OK, 1))
}
