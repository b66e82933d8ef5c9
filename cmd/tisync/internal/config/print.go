package config

import (
	"bytes"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// WriteEffective writes the effective configuration as YAML that tisync would accept as a config
// file, followed by a comment block that lists which secrets are set and where they came from. Secret
// values are never written.
func (c *Config) WriteEffective(w io.Writer) error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	buf.WriteString("# secrets (values are never printed):\n")
	for _, s := range c.SecretStatuses() {
		if s.Source == "" {
			fmt.Fprintf(&buf, "#   %s: not set\n", s.Name)
		} else {
			fmt.Fprintf(&buf, "#   %s: ****** (from %s)\n", s.Name, s.Source)
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}
