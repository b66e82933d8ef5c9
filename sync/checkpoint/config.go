package checkpoint

import (
	"fmt"
	"regexp"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Config configures the JetStream checkpoint store.
type Config struct {
	// ObjectBucket is the object store bucket that holds the compressed snapshots. Default
	// "tisync_checkpoints".
	ObjectBucket string `yaml:"object_bucket"`
	// MetaBucket is the key-value bucket that holds the metadata of each checkpoint. Default
	// "tisync_checkpoint_meta".
	MetaBucket string `yaml:"meta_bucket"`
	// Replicas is the number of stream replicas of both buckets in a cluster, 1 to 5. Default 1.
	Replicas int `yaml:"replicas"`
	// Storage is the JetStream storage type of both buckets: "file" or "memory". Default "file".
	Storage string `yaml:"storage"`
	// MetaHistory is how many values per key the metadata bucket keeps, 1 to 64. A reset of
	// unreadable metadata recovers the high-water marks from the newest readable older value.
	// Default 5.
	MetaHistory int `yaml:"meta_history"`
	// Compression is the zstd level of snapshot objects: "fastest", "default", "better" or "best".
	// Default "default".
	Compression string `yaml:"compression"`
	// Timeout bounds each store operation whose context has no deadline. Default 5m, enough to
	// move a snapshot of several hundred megabytes.
	Timeout time.Duration `yaml:"timeout"`
	// OrphanAge is the minimum age of an unreferenced snapshot object that RemoveOrphans deletes.
	// Younger ones may belong to a save in progress. Default 1h.
	OrphanAge time.Duration `yaml:"orphan_age"`
}

// DefaultConfig returns the configuration with every default filled in.
func DefaultConfig() Config {
	return Config{
		ObjectBucket: "tisync_checkpoints",
		MetaBucket:   "tisync_checkpoint_meta",
		Replicas:     1,
		Storage:      "file",
		MetaHistory:  5,
		Compression:  "default",
		Timeout:      5 * time.Minute,
		OrphanAge:    time.Hour,
	}
}

var bucketName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// Validate returns an error naming the first invalid field, its value and what is expected.
func (c Config) Validate() error {
	switch {
	case !bucketName.MatchString(c.ObjectBucket):
		return fmt.Errorf("object_bucket: %q is invalid: expected letters, digits, '_' and '-'", c.ObjectBucket)
	case !bucketName.MatchString(c.MetaBucket):
		return fmt.Errorf("meta_bucket: %q is invalid: expected letters, digits, '_' and '-'", c.MetaBucket)
	case c.ObjectBucket == c.MetaBucket:
		return fmt.Errorf("meta_bucket: %q is invalid: expected a name other than object_bucket", c.MetaBucket)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("replicas: %d is invalid: expected 1 to 5", c.Replicas)
	case c.Storage != "file" && c.Storage != "memory":
		return fmt.Errorf("storage: %q is invalid: expected file or memory", c.Storage)
	case c.MetaHistory < 1 || c.MetaHistory > 64:
		return fmt.Errorf("meta_history: %d is invalid: expected 1 to 64", c.MetaHistory)
	case c.Timeout <= 0:
		return fmt.Errorf("timeout: %s is invalid: expected a positive duration", c.Timeout)
	case c.OrphanAge <= 0:
		return fmt.Errorf("orphan_age: %s is invalid: expected a positive duration", c.OrphanAge)
	}
	if _, err := c.level(); err != nil {
		return err
	}
	return nil
}

func (c Config) level() (zstd.EncoderLevel, error) {
	switch c.Compression {
	case "fastest":
		return zstd.SpeedFastest, nil
	case "default":
		return zstd.SpeedDefault, nil
	case "better":
		return zstd.SpeedBetterCompression, nil
	case "best":
		return zstd.SpeedBestCompression, nil
	}
	return 0, fmt.Errorf("compression: %q is invalid: expected fastest, default, better or best", c.Compression)
}
