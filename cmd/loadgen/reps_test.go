package main

import (
	"encoding/json"
	"math"
	"testing"
)

func TestMedianRange(t *testing.T) {
	for _, c := range []struct {
		in          []float64
		med, lo, hi float64
	}{
		{[]float64{3, 1, 2}, 2, 1, 3},
		{[]float64{0.9, 0.5}, 0.7, 0.5, 0.9},
		{[]float64{4}, 4, 4, 4},
	} {
		med, lo, hi := medianRange(c.in)
		if med != c.med || lo != c.lo || hi != c.hi {
			t.Errorf("medianRange(%v) = %v %v %v, want %v %v %v", c.in, med, lo, hi, c.med, c.lo, c.hi)
		}
	}
	if med, _, _ := medianRange(nil); !math.IsNaN(med) {
		t.Errorf("medianRange(nil) = %v, want NaN", med)
	}
}

// A goal is met on the median, not on the best repetition, and a
// repetition that broke a condition fails the goal whatever its figure.
func TestSummarizeGoalsJudgesTheMedian(t *testing.T) {
	hs := func(v float64, valid bool) goal {
		return goal{Name: "handshakes", Value: v, Limit: 0.8, AtLeast: true, Valid: valid}.judged()
	}
	lat := func(v float64) goal { return goal{Name: "p99", Value: v, Limit: 3, Valid: true}.judged() }
	rep := func(gs ...goal) repetition { return repetition{results: &results{Goals: gs}} }

	sum := summarizeGoals([]repetition{rep(hs(0.95, true), lat(2)), rep(hs(0.7, true), lat(4)), rep(hs(0.75, true), lat(2.5))})
	if len(sum) != 2 || sum[0].Name != "handshakes" || sum[1].Name != "p99" {
		t.Fatalf("summary = %+v", sum)
	}
	if sum[0].Met || sum[0].Median != 0.75 || sum[0].Min != 0.7 || sum[0].Max != 0.95 {
		t.Errorf("handshakes: met=%v median=%v [%v-%v]; want not met, 0.75 [0.7-0.95] (one good run is not enough)", sum[0].Met, sum[0].Median, sum[0].Min, sum[0].Max)
	}
	if !sum[1].Met || sum[1].Median != 2.5 {
		t.Errorf("p99: met=%v median=%v; want met at 2.5", sum[1].Met, sum[1].Median)
	}

	sum = summarizeGoals([]repetition{rep(hs(0.9, true)), rep(hs(0.9, false)), rep(hs(0.9, true))})
	if sum[0].Met || len(sum[0].Invalid) != 1 || sum[0].Invalid[0] != 2 {
		t.Errorf("an invalid repetition must fail the goal: %+v", sum[0])
	}

	// A goal missing from a repetition (its phase failed) is null there and
	// the median is over the others; the report must still encode as JSON.
	sum = summarizeGoals([]repetition{rep(hs(0.9, true), lat(1)), rep(hs(0.85, true)), rep(hs(0.8, true), lat(2))})
	if sum[1].Values[1] != nil || sum[1].Median != 1.5 {
		t.Errorf("p99 with a missing repetition: %+v", sum[1])
	}
	if _, err := json.Marshal(report{Summary: sum}); err != nil {
		t.Errorf("report does not encode: %v", err)
	}
}
