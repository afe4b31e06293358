package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// flagValue is a string flag that may also be a bool flag (so that
// "--use-redis-sessions" alone means true).
type flagValue struct {
	value  string
	isBool bool
}

func (f *flagValue) String() string     { return f.value }
func (f *flagValue) Set(s string) error { f.value = s; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.isBool }

// source resolves each variable from flags, then environment, then default,
// and collects parse problems.
type source struct {
	vars     map[string]variable
	flags    map[string]*flagValue
	setFlags map[string]bool
	env      func(string) (string, bool)
	problems []error
	failed   map[string]bool // variables with a parse problem
}

// newSource parses args. It returns flag.ErrHelp for -h/--help.
func newSource(args []string, lookupEnv func(string) (string, bool)) (*source, error) {
	s := &source{
		vars:     map[string]variable{},
		flags:    map[string]*flagValue{},
		setFlags: map[string]bool{},
		failed:   map[string]bool{},
		env:      lookupEnv,
	}
	if s.env == nil {
		s.env = func(string) (string, bool) { return "", false }
	}
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, v := range variables() {
		s.vars[v.name] = v
		fv := &flagValue{isBool: v.isBool}
		s.flags[v.name] = fv
		fs.Var(fv, flagName(v.name), v.help)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w\n%w", ErrInvalid, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w\nunexpected argument %q: every setting is a --flag or an environment variable", ErrInvalid, clip(fs.Arg(0)))
	}
	fs.Visit(func(f *flag.Flag) { s.setFlags[f.Name] = true })
	return s, nil
}

// lookup returns the user's value for name (flag first, then environment),
// trimmed, and whether it is non-empty. An explicit empty flag hides the
// environment.
func (s *source) lookup(name string) (string, bool) {
	if s.setFlags[flagName(name)] {
		v := strings.TrimSpace(s.flags[name].value)
		return v, v != ""
	}
	v, _ := s.env(name)
	v = strings.TrimSpace(v)
	return v, v != ""
}

// str returns the user's value or the default.
func (s *source) str(name string) string {
	if v, ok := s.lookup(name); ok {
		return v
	}
	return s.vars[name].def
}

// problemf records a parse problem; format must start with the variable's
// name, which is then marked failed.
func (s *source) problemf(format string, args ...any) {
	err := fmt.Errorf(format, args...)
	name, _, _ := strings.Cut(err.Error(), " ")
	s.failed[name] = true
	s.problems = append(s.problems, err)
}

// followUps drops validation problems about variables that already failed to
// parse: their value is the default or missing, and the parse problem says
// what to fix.
func (s *source) followUps(problems []error) []error {
	var out []error
	for _, p := range problems {
		name, _, _ := strings.Cut(p.Error(), " ")
		if !s.failed[name] {
			out = append(out, p)
		}
	}
	return out
}

// shown is how a bad value appears in a message: quoted and clipped, or
// hidden for secrets.
func (s *source) shown(name, v string) string {
	if s.vars[name].secret {
		return "(value hidden)"
	}
	return strconv.Quote(clip(v))
}

func clip(v string) string {
	const maxShown = 60
	if len(v) > maxShown {
		return v[:maxShown] + "..."
	}
	return v
}

// dur parses a duration into dst; on error dst keeps the default.
func (s *source) dur(name string, dst *time.Duration) {
	*dst, _ = time.ParseDuration(s.vars[name].def)
	v, ok := s.lookup(name)
	if !ok {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		s.problemf("%s must be a duration such as \"90s\", \"5m\" or \"24h\"; got %s", name, s.shown(name, v))
		return
	}
	*dst = d
}

// integer parses a base-10 integer into dst; on error dst keeps the default.
func (s *source) integer(name string, dst *int64) {
	*dst, _ = strconv.ParseInt(s.vars[name].def, 10, 64)
	v, ok := s.lookup(name)
	if !ok {
		return
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		s.problemf("%s must be a whole number; got %s", name, s.shown(name, v))
		return
	}
	*dst = n
}

// intField is integer for int fields, refusing values that overflow int.
func (s *source) intField(name string, dst *int) {
	var n int64
	s.integer(name, &n)
	if n > math.MaxInt32 || n < math.MinInt32 {
		s.problemf("%s is out of range; got %d", name, n)
		n, _ = strconv.ParseInt(s.vars[name].def, 10, 64)
	}
	*dst = int(n)
}

// float parses a finite float into dst; on error dst keeps the default.
func (s *source) float(name string, dst *float64) {
	*dst, _ = strconv.ParseFloat(s.vars[name].def, 64)
	v, ok := s.lookup(name)
	if !ok {
		return
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		s.problemf("%s must be a number such as 20 or 0.5; got %s", name, s.shown(name, v))
		return
	}
	*dst = f
}

// boolean parses true/false (also 1/0, t/f, yes/no, on/off); it returns the
// value and whether the user set it.
func (s *source) boolean(name string) (val, set bool) {
	def, _ := strconv.ParseBool(s.vars[name].def)
	v, ok := s.lookup(name)
	if !ok {
		return def, false
	}
	switch strings.ToLower(v) {
	case "1", "t", "true", "yes", "y", "on":
		return true, true
	case "0", "f", "false", "no", "n", "off":
		return false, true
	}
	s.problemf("%s must be true or false; got %s", name, s.shown(name, v))
	return def, false
}

// list splits a comma-separated value, trimming items and dropping empty ones.
func (s *source) list(name string) []string {
	v, ok := s.lookup(name)
	if !ok {
		return nil
	}
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
