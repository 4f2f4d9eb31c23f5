package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ConfigFlag is the name of the flag that points at a YAML configuration file.
const ConfigFlag = "config"

// Parse registers --config on fs (unless present), parses args, and fills every
// flag not given on the command line from the environment (envPrefix + "_" +
// NAME_IN_CAPS) or else from the YAML file. Unknown keys in the file are an
// error, so that a typo never silently falls back to a default.
func Parse(fs *flag.FlagSet, envPrefix string, args []string) error {
	if fs.Lookup(ConfigFlag) == nil {
		fs.String(ConfigFlag, "", "path of a YAML file of flag-name: value settings (env "+EnvName(envPrefix, ConfigFlag)+")")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: settings are given as --name=value flags (see --help)", fs.Args())
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })

	path := fs.Lookup(ConfigFlag).Value.String()
	if !explicit[ConfigFlag] {
		if v, ok := os.LookupEnv(EnvName(envPrefix, ConfigFlag)); ok {
			path = v
		}
	}
	fileValues := map[string]string{}
	if path != "" {
		var err error
		if fileValues, err = readFile(path); err != nil {
			return err
		}
		var unknown []string
		for k := range fileValues {
			if fs.Lookup(k) == nil {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return fmt.Errorf("config file %s: unknown settings %v: use the flag names listed by --help", path, unknown)
		}
	}

	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if explicit[f.Name] || f.Name == ConfigFlag {
			return
		}
		env := EnvName(envPrefix, f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("environment variable %s=%q: %w", env, v, err))
			}
			return
		}
		if v, ok := fileValues[f.Name]; ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("config file %s, setting %s=%q: %w", path, f.Name, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// EnvName is the environment variable that sets flag name under prefix.
func EnvName(prefix, name string) string {
	n := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if prefix == "" {
		return n
	}
	return prefix + "_" + n
}

func readFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config file %s is not a flat YAML map of flag names to values: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch t := v.(type) {
		case []any:
			parts := make([]string, len(t))
			for i, p := range t {
				parts[i] = fmt.Sprint(p)
			}
			out[k] = strings.Join(parts, ",")
		case map[string]any:
			return nil, fmt.Errorf("config file %s: setting %q is a map; write one flag name per key (see --help)", path, k)
		case nil:
			out[k] = ""
		default:
			out[k] = fmt.Sprint(t)
		}
	}
	return out, nil
}

// StringList is a flag.Value holding a comma-separated list.
type StringList []string

func (l *StringList) String() string { return strings.Join(*l, ",") }

// Set replaces the list with the comma-separated items of v (empty items dropped).
func (l *StringList) Set(v string) error {
	*l = (*l)[:0]
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// OnCommandLine reports whether flag name was given in args (as -name,
// --name, with or without =value). The connectors warn when a secret is:
// every local user can read a process's arguments (ps, /proc/<pid>/cmdline).
func OnCommandLine(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}
