package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// promSample is one unlabelled sample family value, by metric name.
type promSample map[string]float64

// parseProm reads Prometheus text exposition and keeps samples without
// labels (the process and Go runtime gauges this tool needs). Malformed lines
// are skipped.
func parseProm(r io.Reader) (promSample, error) {
	out := promSample{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok || strings.ContainsRune(name, '{') {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		out[name] = v
	}
	return out, sc.Err()
}

// scrape fetches and parses base + "/metrics".
func scrape(ctx context.Context, base string) (promSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: HTTP %d", resp.StatusCode)
	}
	return parseProm(resp.Body)
}

// waitConnsOpen polls base + "/metrics" until its sessiongate_connections_open
// gauge (the gateway and the floor server both expose it) equals want: the
// server has let go of every connection the client closed.
func waitConnsOpen(ctx context.Context, base string, want int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := "nothing"
	for {
		s, err := scrape(ctx, base)
		switch {
		case err != nil:
			last = err.Error()
		case s["sessiongate_connections_open"] == float64(want):
			return nil
		default:
			last = strconv.FormatFloat(s["sessiongate_connections_open"], 'f', -1, 64)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sessiongate_connections_open: want %d, last read %s: %w", want, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
