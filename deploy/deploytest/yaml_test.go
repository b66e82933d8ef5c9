package deploytest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDeployYAMLParses(t *testing.T) {
	files := append(deployFiles(t, ".yaml", ".yml"), composeFile)
	if len(files) < 10 {
		t.Fatalf("found %d YAML files, want those of deploy/ and %s", len(files), composeFile)
	}
	for _, rel := range files {
		docs, err := yamlDocuments(readRepoFile(t, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if len(docs) == 0 {
			t.Errorf("%s holds no YAML document", rel)
		}
	}
}

func TestShippedTisyncConfigs(t *testing.T) {
	// The example and the demo configuration are valid for this build of tisync.
	for _, rel := range []string{"deploy/tisync.example.yaml", "deploy/local/demo.yaml"} {
		t.Run(filepath.Base(rel), func(t *testing.T) {
			if _, err := os.Stat(repoPath(t, rel)); err != nil {
				t.Fatal(err)
			}
			configCheck(t, repoPath(t, rel), map[string]string{"TISYNC_TESTINVITE_PRIVATE_KEY": "placeholder"})
		})
	}
}
