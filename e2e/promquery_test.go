//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// promClient queries a Prometheus server's HTTP API.
type promClient struct {
	base   string
	client *http.Client
}

// promResult is the part of an API answer the checks read.
type promResult struct {
	Status    string          `json:"status"`
	Error     string          `json:"error"`
	ErrorType string          `json:"errorType"`
	Data      json.RawMessage `json:"data"`
}

func (p promClient) get(ctx context.Context, path string, q url.Values) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r promResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: HTTP %d: %w", path, resp.StatusCode, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s: %s", path, r.ErrorType, r.Error)
	}
	return r.Data, nil
}

// series runs an instant query and returns how many series it returned.
// An expression Prometheus refuses (a PromQL syntax error) is an error.
func (p promClient) series(ctx context.Context, expr string) (int, error) {
	data, err := p.get(ctx, "/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return 0, err
	}
	var v struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return 0, err
	}
	if v.ResultType == "scalar" || v.ResultType == "string" {
		return 1, nil
	}
	return len(v.Result), nil
}

// labelValues returns the values of label among the series matching match.
func (p promClient) labelValues(ctx context.Context, label, match string) ([]string, error) {
	data, err := p.get(ctx, "/api/v1/label/"+url.PathEscape(label)+"/values", url.Values{"match[]": {match}})
	if err != nil {
		return nil, err
	}
	var out []string
	return out, json.Unmarshal(data, &out)
}

// promRule is one loaded rule as /api/v1/rules reports it: Prometheus
// parsed it from the rule file.
type promRule struct {
	Name   string `json:"name"`
	Query  string `json:"query"`
	Type   string `json:"type"` // "recording" | "alerting"
	Health string `json:"health"`
	Error  string `json:"lastError"`
}

func (p promClient) rules(ctx context.Context) ([]promRule, error) {
	data, err := p.get(ctx, "/api/v1/rules", nil)
	if err != nil {
		return nil, err
	}
	var v struct {
		Groups []struct {
			Rules []promRule `json:"rules"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	var out []promRule
	for _, g := range v.Groups {
		out = append(out, g.Rules...)
	}
	return out, nil
}

// metricSelectors returns the vector selectors of expr that name a metric
// this project exports or the scrape adds (sessiongate_*, the recording
// rules' sessiongate:*, go_*, process_*, up), each with its label
// matchers, e.g. `sessiongate_cluster_instances{state="gone"}`. Quoted
// strings and function names are skipped. It is a scanner, not a PromQL
// parser: Prometheus itself checks the whole expression.
func metricSelectors(expr string) []string {
	seen := map[string]bool{}
	var out []string
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' {
					j++
				}
				j++
			}
			i = j + 1
		case c == '{':
			// A matcher list not attached to a metric name we track.
			i = skipBraces(expr, i)
		case c == '[':
			for i < len(expr) && expr[i] != ']' {
				i++
			}
		case isIdent(c, true) && (i == 0 || !isIdent(expr[i-1], false)):
			j := i
			for j < len(expr) && isIdent(expr[j], false) {
				j++
			}
			name := expr[i:j]
			k := j
			for k < len(expr) && expr[k] == ' ' {
				k++
			}
			if k < len(expr) && expr[k] == '(' {
				i = j // a function or an aggregation
				continue
			}
			if !tracked(name) {
				i = j
				continue
			}
			sel := name
			if k < len(expr) && expr[k] == '{' {
				end := skipBraces(expr, k)
				sel += expr[k:end]
				j = end
			}
			if !seen[sel] {
				seen[sel] = true
				out = append(out, sel)
			}
			i = j
		default:
			i++
		}
	}
	return out
}

func tracked(name string) bool {
	return name == "up" || strings.HasPrefix(name, "sessiongate_") || strings.HasPrefix(name, "sessiongate:") ||
		strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_")
}

// skipBraces returns the index after the '}' closing the '{' at i,
// skipping quoted strings.
func skipBraces(s string, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '"':
			for j++; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
				}
			}
		case '}':
			return j + 1
		}
	}
	return len(s)
}

// dashboard is the part of a Grafana dashboard JSON the checks read.
type dashboard struct {
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			IncludeAll bool            `json:"includeAll"`
			AllValue   string          `json:"allValue"`
		} `json:"list"`
	} `json:"templating"`
	Panels []dashPanel `json:"panels"`
}

type dashPanel struct {
	ID         int    `json:"id"`
	Title      string `json:"title"`
	Type       string `json:"type"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"` // a collapsed row's panels
}

func loadDashboard(path string) (dashboard, error) {
	var d dashboard
	b, err := os.ReadFile(path)
	if err != nil {
		return d, err
	}
	return d, json.Unmarshal(b, &d)
}

// panels returns every panel, those inside rows included.
func (d dashboard) panels() []dashPanel {
	var out []dashPanel
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// grafanaBuiltins are the values Grafana's own variables get in the checks.
var grafanaBuiltins = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "5m",
}

var varRef = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// substitute replaces the variable references in s ($name, ${name},
// ${name:fmt}, [[name]]) by vals; it returns the names it did not know.
func substitute(s string, vals map[string]string) (string, []string) {
	var unknown []string
	out := varRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := varRef.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		if v, ok := vals[name]; ok {
			return v
		}
		if v, ok := grafanaBuiltins[name]; ok {
			return v
		}
		unknown = append(unknown, name)
		return m
	})
	return out, unknown
}

var labelValuesQuery = regexp.MustCompile(`^\s*label_values\((.*),\s*(\w+)\s*\)\s*$`)

// resolveVariables gives every template variable the value a person
// would see: a query variable's label_values(...) is asked of Prometheus
// (it must find values) and the first one taken, or the variable's "All"
// value when it has one; a datasource variable is not used in queries.
func (d dashboard) resolveVariables(ctx context.Context, p promClient) (map[string]string, error) {
	vals := map[string]string{}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			vals[v.Name] = "prometheus"
		case "query":
			q := v.Definition
			if q == "" {
				var s string
				var o struct {
					Query string `json:"query"`
				}
				if json.Unmarshal(v.Query, &s) == nil {
					q = s
				} else if json.Unmarshal(v.Query, &o) == nil {
					q = o.Query
				}
			}
			m := labelValuesQuery.FindStringSubmatch(q)
			if m == nil {
				return nil, fmt.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, q)
			}
			sel, unknown := substitute(m[1], vals)
			if len(unknown) > 0 {
				return nil, fmt.Errorf("variable %s: unknown variables %v (variables may use only those defined before them)", v.Name, unknown)
			}
			got, err := p.labelValues(ctx, m[2], sel)
			if err != nil {
				return nil, fmt.Errorf("variable %s: %w", v.Name, err)
			}
			if len(got) == 0 {
				return nil, fmt.Errorf("variable %s: label_values(%s, %s) found no value", v.Name, sel, m[2])
			}
			sort.Strings(got)
			vals[v.Name] = got[0]
			if v.IncludeAll && v.AllValue != "" {
				vals[v.Name] = v.AllValue
			}
		default:
			return nil, fmt.Errorf("variable %s: type %q not handled by the check", v.Name, v.Type)
		}
	}
	return vals, nil
}

// waitAllSeries polls until every check returns no error, or the deadline
// passes; then it returns the failures of the last round, sorted.
func waitAllSeries(ctx context.Context, timeout time.Duration, checks map[string]func(context.Context) error) []string {
	deadline := time.Now().Add(timeout)
	pending := make(map[string]func(context.Context) error, len(checks))
	for k, v := range checks {
		pending[k] = v
	}
	var fails []string
	for {
		fails = fails[:0]
		for what, check := range pending {
			if err := check(ctx); err != nil {
				fails = append(fails, what+": "+err.Error())
				continue
			}
			delete(pending, what) // series never disappear within the test
		}
		if len(pending) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			sort.Strings(fails)
			return fails
		}
		time.Sleep(250 * time.Millisecond)
	}
}
