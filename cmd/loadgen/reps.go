package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// A goal's figure is judged on the median of the repetitions: a goal that
// holds only in the best run does not hold on these shared, noisy machines.

// noiseMeter measures the CPU the rest of the machine used over one
// repetition: the machine's busy time minus this process's and its reaped
// children's (gateways, redis-server, workers, floor servers: every server
// a repetition starts is stopped and reaped before the repetition ends).
type noiseMeter struct {
	t0         time.Time
	busy0, own float64
}

func startNoise() *noiseMeter {
	m := &noiseMeter{t0: time.Now()}
	m.busy0, _ = machineBusySeconds()
	m.own = ownCPUSeconds()
	return m
}

// othersPctCore is the others' CPU since start, in percent of one core.
func (m *noiseMeter) othersPctCore() float64 {
	busy, _ := machineBusySeconds()
	wall := time.Since(m.t0).Seconds()
	if wall <= 0 {
		return 0
	}
	return max(0, 100*((busy-m.busy0)-(ownCPUSeconds()-m.own))/wall)
}

// ownCPUSeconds is the user+system CPU of this process and of its children
// that have been waited for.
func ownCPUSeconds() float64 {
	total := 0.0
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += tvSec(ru.Utime) + tvSec(ru.Stime)
		}
	}
	return total
}

func tvSec(tv syscall.Timeval) float64 { return float64(tv.Sec) + float64(tv.Usec)/1e6 }

// repetition is one complete run (fresh redis-server and gateways) and the
// noise on the machine while it ran.
type repetition struct {
	*results
	// OthersPctCore is other workloads' CPU over the whole repetition, in
	// percent of one core.
	OthersPctCore float64 `json:"others_cpu_pct_of_core"`
}

// goalSummary is one goal over all repetitions.
type goalSummary struct {
	Name   string     `json:"name"`
	Target string     `json:"target"`
	Unit   string     `json:"unit"`
	Values []*float64 `json:"values"` // per repetition; null where it did not run
	Median float64    `json:"median"`
	Min    float64    `json:"min"`
	Max    float64    `json:"max"`
	// Met: the median meets the limit and every repetition was valid (no
	// failed handshake, no missed event, ...).
	Met bool `json:"met"`
	// Invalid lists the repetitions (1-based) whose run broke a condition
	// other than the figure itself.
	Invalid []int `json:"invalid_reps,omitempty"`
}

// report is what a multi-repetition run writes.
type report struct {
	Profile profile       `json:"profile"`
	Reps    []repetition  `json:"repetitions"`
	Summary []goalSummary `json:"summary"`
}

// summarizeGoals groups the repetitions' goals by name, in the order of
// first appearance.
func summarizeGoals(reps []repetition) []goalSummary {
	var out []goalSummary
	idx := map[string]int{}
	for i, rp := range reps {
		for _, g := range rp.Goals {
			j, ok := idx[g.Name]
			if !ok {
				j = len(out)
				idx[g.Name] = j
				vals := make([]*float64, len(reps))
				out = append(out, goalSummary{Name: g.Name, Target: g.Target, Unit: g.Unit, Values: vals})
			}
			s := &out[j]
			v := g.Value
			s.Values[i] = &v
			if !g.Valid {
				s.Invalid = append(s.Invalid, i+1)
			}
		}
	}
	for j := range out {
		s := &out[j]
		var ran []float64
		for _, v := range s.Values {
			if v != nil {
				ran = append(ran, *v)
			}
		}
		s.Median, s.Min, s.Max = medianRange(ran)
		g := goalOf(reps, s.Name)
		s.Met = len(ran) > 0 && len(s.Invalid) == 0 && g.meets(s.Median)
	}
	return out
}

// goalOf returns the first repetition's goal of that name (its limit and
// direction are the same in every repetition).
func goalOf(reps []repetition, name string) goal {
	for _, rp := range reps {
		for _, g := range rp.Goals {
			if g.Name == name {
				return g
			}
		}
	}
	return goal{}
}

// medianRange is the median (the mean of the middle two for an even count),
// min and max of vs; NaN for none.
func medianRange(vs []float64) (med, lo, hi float64) {
	if len(vs) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

// printSummary writes the goals as medians with ranges, and the noise of
// each repetition.
func printSummary(w io.Writer, reps []repetition, sum []goalSummary) {
	fmt.Fprintf(w, "\n==== %d repetitions: goals judged on the median ====\n", len(reps))
	noise := make([]string, len(reps))
	for i, rp := range reps {
		noise[i] = fmt.Sprintf("#%d %.0f%% (load %s -> %s, %.0f s)", i+1, rp.OthersPctCore, rp.Machine.LoadStart, rp.Machine.LoadEnd, rp.DurationSec)
	}
	fmt.Fprintf(w, "others' CPU per repetition (%% of a core): %s\n\n", strings.Join(noise, "; "))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "goal\ttarget\tmedian\trange\tper repetition\t")
	for _, s := range sum {
		m := mark(goalOf(reps, s.Name).Check, s.Met)
		per := make([]string, len(s.Values))
		for i, v := range s.Values {
			per[i] = "-"
			if v != nil {
				per[i] = fmtValue(*v)
			}
		}
		inv := ""
		if len(s.Invalid) > 0 {
			inv = fmt.Sprintf(" (repetitions %v broke a condition)", s.Invalid)
		}
		fmt.Fprintf(tw, "[%s] %s\t%s\t%s%s\t[%s-%s]\t%s%s\t\n", m, s.Name, s.Target, fmtValue(s.Median), s.Unit,
			fmtValue(s.Min), fmtValue(s.Max), strings.Join(per, " "), inv)
	}
	_ = tw.Flush()
}

func fmtValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
