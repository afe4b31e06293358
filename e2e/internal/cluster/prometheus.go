package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// PrometheusOptions configure the Prometheus server [Start] runs when
// Options.Prometheus is set.
type PrometheusOptions struct {
	// Rules are rule files (absolute paths, e.g. the repository's
	// deploy/prometheus/sessiongate.rules.yml) Prometheus loads.
	Rules []string
	// Port is Prometheus's port on 127.0.0.1. Defaults to a free port.
	Port int
	// ScrapeInterval is how often every instance's /metrics is scraped and
	// the rules evaluated. Defaults to 1s (a test waits for data).
	ScrapeInterval time.Duration
}

// PrometheusJob is the scrape job of the instances: the job label the
// rules in deploy/prometheus expect.
const PrometheusJob = "sessiongate"

// Prometheus is one prometheus server process scraping every gateway
// instance, with its data in a directory of its own.
type Prometheus struct {
	*Process
	Port int
}

// URL is Prometheus's base URL, e.g. "http://127.0.0.1:9090".
func (p *Prometheus) URL() string { return "http://127.0.0.1:" + strconv.Itoa(p.Port) }

func startPrometheus(ctx context.Context, dir string, o PrometheusOptions, gateways []*Gateway) (*Prometheus, error) {
	bin, err := lookPath("prometheus")
	if err != nil {
		return nil, err
	}
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = time.Second
	}
	if o.Port == 0 {
		if o.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "prometheus-data")
	if err := mkdir(data); err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(prometheusConfig(o, gateways)), 0o600); err != nil {
		return nil, fmt.Errorf("cluster: prometheus config: %w", err)
	}
	args := []string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + data,
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(o.Port),
		"--storage.tsdb.retention.time=1d",
		"--log.level=warn",
	}
	p := &Prometheus{Process: newProcess("prometheus", filepath.Join(dir, "prometheus.log"), bin, args, minimalEnv(), dir), Port: o.Port}
	if err := p.Start(); err != nil {
		return nil, err
	}
	readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := newHTTPClient()
	err = poll(readyCtx, 50*time.Millisecond, "prometheus /-/ready", func() error {
		if !p.Running() {
			return fmt.Errorf("%w: prometheus: %v (see %s)", ErrExited, p.ExitErr(), p.LogPath)
		}
		code, err := getStatus(readyCtx, client, p.URL()+"/-/ready")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/-/ready answered %d", code)
		}
		return nil
	})
	if err != nil {
		p.Stop(5 * time.Second)
		return nil, err
	}
	return p, nil
}

// prometheusConfig scrapes every instance's /metrics as job
// [PrometheusJob] and loads the rule files.
func prometheusConfig(o PrometheusOptions, gateways []*Gateway) string {
	var b strings.Builder
	iv := o.ScrapeInterval.String()
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\n", iv, iv, iv)
	if len(o.Rules) > 0 {
		b.WriteString("rule_files:\n")
		for _, r := range o.Rules {
			fmt.Fprintf(&b, "  - %q\n", r)
		}
	}
	fmt.Fprintf(&b, "scrape_configs:\n  - job_name: %s\n    metrics_path: /metrics\n    static_configs:\n      - targets:\n", PrometheusJob)
	for _, g := range gateways {
		fmt.Fprintf(&b, "          - \"127.0.0.1:%d\"\n", g.Port)
	}
	return b.String()
}
