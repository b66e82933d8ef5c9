package config

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tisync/tisync/sync/testinvite"
)

// SecretFiles names a file for each secret. A file holds the secret alone; one trailing newline is
// removed.
type SecretFiles struct {
	// TestInvitePrivateKey is the organization's TestInvite private key. Default: none.
	TestInvitePrivateKey string `yaml:"testinvite_private_key"`
	// TestInviteToken is a TestInvite bearer token, for auth scheme bearer. Default: none.
	TestInviteToken string `yaml:"testinvite_token"`
	// NATSPassword is the password of nats.user. Default: none.
	NATSPassword string `yaml:"nats_password"`
	// NATSToken is a NATS authentication token. Default: none.
	NATSToken string `yaml:"nats_token"`
	// ClickHousePassword is the password of the ClickHouse user. Default: none.
	ClickHousePassword string `yaml:"clickhouse_password"`
}

// secret describes one secret: its name, which is also the suffix of its TISYNC_ variables, where
// its file path is configured, and which setting receives it.
type secret struct {
	name   string
	file   func(*SecretFiles) string
	assign func(*Config, string)
}

// secrets lists every secret tisync reads. The order is the order of `config check` output.
var secrets = []secret{
	{"testinvite_private_key", func(f *SecretFiles) string { return f.TestInvitePrivateKey }, func(c *Config, v string) { c.TestInvite.PrivateKey = testinvite.Secret(v) }},
	{"testinvite_token", func(f *SecretFiles) string { return f.TestInviteToken }, func(c *Config, v string) { c.TestInvite.Token = testinvite.Secret(v) }},
	{"nats_password", func(f *SecretFiles) string { return f.NATSPassword }, func(c *Config, v string) { c.NATS.Password = v }},
	{"nats_token", func(f *SecretFiles) string { return f.NATSToken }, func(c *Config, v string) { c.NATS.Token = v }},
	{"clickhouse_password", func(f *SecretFiles) string { return f.ClickHousePassword }, func(c *Config, v string) { c.ClickHouse.Password = v }},
}

// secretKeys are configuration keys that would hold a secret inline. The file rejects them, so that
// secrets stay out of config files, ConfigMaps and version control.
var secretKeys = map[string]string{
	"private_key": "testinvite_private_key",
	"privatekey":  "testinvite_private_key",
	"password":    "",
	"token":       "",
}

// loadSecrets reads every secret from TISYNC_<NAME>, TISYNC_<NAME>_FILE or secret_files.<name>, in
// that order of precedence.
func (c *Config) loadSecrets(env map[string]string) error {
	c.secretSources = map[string]string{}
	for _, s := range secrets {
		variable := "TISYNC_" + strings.ToUpper(s.name)
		if v, ok := env[variable]; ok && v != "" {
			s.assign(c, v)
			c.secretSources[s.name] = "environment variable " + variable
			continue
		}
		path, source := env[variable+"_FILE"], "file named by "+variable+"_FILE"
		if path == "" {
			path, source = s.file(&c.SecretFiles), "file named by secret_files."+s.name
		}
		if path == "" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("secret %s: %w; check the path in %s", s.name, err, strings.TrimPrefix(source, "file named by "))
		}
		v := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		if v == "" {
			return fmt.Errorf("secret %s: file %s is empty", s.name, path)
		}
		s.assign(c, v)
		c.secretSources[s.name] = source + " (" + path + ")"
	}
	return nil
}

// rejectInlineSecrets returns an error for a key in the YAML document that would hold a secret.
func rejectInlineSecrets(data []byte) error {
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root); err != nil {
		return err
	}
	return walkSecretKeys(&root, "")
}

func walkSecretKeys(n *yaml.Node, path string) error {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			if err := walkSecretKeys(c, path); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i].Value, n.Content[i+1]
			full := key
			if path != "" {
				full = path + "." + key
			}
			if name, ok := secretKeys[strings.ToLower(key)]; ok && path != "secret_files" && !strings.HasSuffix(path, ".headers") {
				if name == "" {
					name = strings.ReplaceAll(path, ".", "_") + "_" + key
				}
				return fmt.Errorf("line %d: %s cannot be set in the config file: set the environment variable TISYNC_%s, or put it in a file and set secret_files.%s",
					n.Content[i].Line, full, strings.ToUpper(name), name)
			}
			if err := walkSecretKeys(value, full); err != nil {
				return err
			}
		}
	}
	return nil
}

// SecretStatus is the masked view of one secret for `config check`.
type SecretStatus struct {
	Name string
	// Source names where the secret came from, or is empty when it is not set.
	Source string
}

// SecretStatuses returns, for every secret, whether it is set and where it came from, without its
// value.
func (c *Config) SecretStatuses() []SecretStatus {
	out := make([]SecretStatus, 0, len(secrets))
	for _, s := range secrets {
		out = append(out, SecretStatus{Name: s.name, Source: c.secretSources[s.name]})
	}
	return out
}
