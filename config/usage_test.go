package config

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

func TestUsageListsEveryVariable(t *testing.T) {
	u := Usage()
	for _, v := range variables() {
		if !strings.Contains(u, v.name+" (--"+flagName(v.name)+")") {
			t.Errorf("Usage lacks %s with its flag", v.name)
		}
		if v.def == "" && v.defText == "" {
			t.Errorf("%s has no documented default", v.name)
		}
	}
}

// TestEnvExample keeps .env.example in step with the code: every variable
// documented with its default, the example secrets equal to the ones
// production refuses, and the example secrets refused.
func TestEnvExample(t *testing.T) {
	f, err := os.Open("../.env.example")
	if err != nil {
		t.Fatalf("open .env.example: %v", err)
	}
	defer f.Close()
	values := map[string]string{}
	comments := map[string]string{} // comment block right above each variable
	var block []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#"):
			block = append(block, line)
		case line == "":
			block = nil
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf(".env.example: line %q is not NAME=value", line)
			}
			values[k] = v
			comments[k] = strings.Join(block, "\n")
			block = nil
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, v := range variables() {
		known[v.name] = true
		val, ok := values[v.name]
		if !ok {
			t.Errorf(".env.example lacks %s", v.name)
			continue
		}
		if !strings.Contains(comments[v.name], "Default:") {
			t.Errorf(".env.example: %s has no comment with its default", v.name)
		} else if v.def != "" && !strings.Contains(comments[v.name]+"\n", "Default: "+v.def+"\n") {
			// The value may be left empty; the comment is then all a
			// reader has, so it must name the real default.
			t.Errorf(".env.example: %s's comment does not say \"Default: %s\"", v.name, v.def)
		}
		if v.def != "" && val != "" && val != v.def && !v.secret {
			t.Errorf(".env.example: %s=%q differs from the default %q", v.name, val, v.def)
		}
	}
	for k := range values {
		if !known[k] {
			t.Errorf(".env.example has unknown variable %s", k)
		}
	}
	if values["SESSION_SECRET"] != ExampleSessionSecret || values["SESSION_ENCRYPTION_KEY"] != ExampleEncryptionKey {
		t.Fatal(".env.example secrets differ from ExampleSessionSecret/ExampleEncryptionKey")
	}
	for _, k := range []string{"SESSION_SECRET", "SESSION_ENCRYPTION_KEY"} {
		if !strings.Contains(comments[k], "EXAMPLE — production refuses these") {
			t.Errorf(".env.example: %s is not marked as an example", k)
		}
	}

	// The file as is loads in development and is refused in production.
	env := func(k string) (string, bool) { v, ok := values[k]; return v, ok }
	c, err := Load(nil, env)
	if err != nil {
		t.Fatalf(".env.example does not load in development: %v", err)
	}
	if !c.UsesExampleSecrets() || c.EphemeralSecrets {
		t.Fatal("development load of .env.example should use the example secrets")
	}
	prod := func(k string) (string, bool) {
		switch k {
		case "GATEWAY_ENV":
			return "production", true
		case "AUTH_WEBHOOK_URL":
			return "https://auth.internal/login", true
		}
		return env(k)
	}
	_, err = Load(nil, prod)
	if err == nil || !strings.Contains(err.Error(), "SESSION_SECRET is the example value") ||
		!strings.Contains(err.Error(), "SESSION_ENCRYPTION_KEY key 1 is the example value") {
		t.Fatalf("production must refuse the example secrets, got %v", err)
	}
}
