package config

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// EnvPrefix starts every environment variable that tisync reads.
const EnvPrefix = "TISYNC_"

// reservedPrefixes start TISYNC_ variables that are not settings: the config file's path and the
// test suite's switches.
var reservedPrefixes = []string{"TISYNC_TEST_", "TISYNC_REQUIRE_", "TISYNC_CONFIG"}

var durationType = reflect.TypeOf(time.Duration(0))

// parseEnviron turns os.Environ-style entries into a map.
func parseEnviron(environ []string) map[string]string {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

// EnvName returns the variable that overrides the setting at a dotted YAML path, for example
// nats.embedded.listen → TISYNC_NATS_EMBEDDED_LISTEN.
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// applyEnv sets every setting that has a TISYNC_ variable in env. Lists are comma-separated and maps
// are comma-separated key=value pairs. Variables that match no setting become warnings.
func applyEnv(cfg *Config, env map[string]string) error {
	used := map[string]bool{}
	for _, s := range secrets {
		used["TISYNC_"+strings.ToUpper(s.name)] = true
		used["TISYNC_"+strings.ToUpper(s.name)+"_FILE"] = true
	}
	var errs []string
	walkSettings(reflect.ValueOf(cfg).Elem(), "", func(path string, v reflect.Value) {
		name := EnvName(path)
		used[name] = true
		raw, ok := env[name]
		if !ok {
			return
		}
		if err := setFromString(v, raw); err != nil {
			errs = append(errs, fmt.Sprintf("%s=%q: %v (setting %s)", name, raw, err, path))
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("environment: %s", strings.Join(errs, "; "))
	}

	var unknown []string
	for name := range env {
		if strings.HasPrefix(name, EnvPrefix) && !used[name] && !reserved(name) {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	for _, name := range unknown {
		cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("environment variable %s matches no setting and is ignored; `tisync config check` lists the effective settings", name))
	}
	return nil
}

func reserved(name string) bool {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// walkSettings calls fn for every leaf setting below v, with its dotted YAML path. Structs are
// descended into; fields tagged yaml:"-" and lists of structs are skipped.
func walkSettings(v reflect.Value, prefix string, fn func(path string, v reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, options, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if options == "inline" && f.Type.Kind() == reflect.Struct {
			walkSettings(v.Field(i), prefix, fn)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		fv := v.Field(i)
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != durationType:
			walkSettings(fv, path, fn)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			// Lists of structs, such as per-task overrides, are set in the file only.
		default:
			fn(path, fv)
		}
	}
}

// setFromString parses raw into v according to v's type.
func setFromString(v reflect.Value, raw string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("expected a duration such as 30s or 5m")
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("expected true or false")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("expected an integer")
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(raw), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("expected a non-negative integer")
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(raw), v.Type().Bits())
		if err != nil {
			return fmt.Errorf("expected a number")
		}
		v.SetFloat(f)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("a list of %s cannot be set from the environment", v.Type().Elem())
		}
		items := []string{}
		for _, item := range strings.Split(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items).Convert(v.Type()))
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String || v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("a map of %s cannot be set from the environment", v.Type().Elem())
		}
		m := reflect.MakeMap(v.Type())
		for _, pair := range strings.Split(raw, ",") {
			if strings.TrimSpace(pair) == "" {
				continue
			}
			k, val, ok := strings.Cut(pair, "=")
			if !ok {
				return fmt.Errorf("expected comma-separated key=value pairs")
			}
			m.SetMapIndex(reflect.ValueOf(strings.TrimSpace(k)), reflect.ValueOf(strings.TrimSpace(val)))
		}
		v.Set(m)
	default:
		return fmt.Errorf("settings of type %s cannot be set from the environment", v.Type())
	}
	return nil
}
