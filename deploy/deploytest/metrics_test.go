package deploytest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// metricFamily is one metric family that tisync exports: its name, Prometheus type and labels.
type metricFamily struct {
	name   string
	kind   string // counter, gauge, histogram or summary
	labels []string
	// vec reports whether the family has labels, so that it has no series before the first
	// observation. A family without labels is exported as soon as it is registered.
	vec bool
	// source is where the family is defined: file:line for tisync's, the collector otherwise.
	source string
}

// constructors maps the client_golang constructors that tisync's metrics.go files call to the
// type and shape of the family they create.
var constructors = map[string]struct {
	kind string
	vec  bool
}{
	"NewCounter":      {"counter", false},
	"NewCounterVec":   {"counter", true},
	"NewGauge":        {"gauge", false},
	"NewGaugeVec":     {"gauge", true},
	"NewHistogram":    {"histogram", false},
	"NewHistogramVec": {"histogram", true},
	"NewSummary":      {"summary", false},
	"NewSummaryVec":   {"summary", true},
}

var (
	codeMetricsOnce sync.Once
	codeMetricsMap  map[string]metricFamily
	codeMetricsErr  error
)

// codeMetrics returns every metric family that tisync's Go code defines, found by parsing each
// non-test Go file of the repository and reading the options of every client_golang constructor
// call. A call whose name or labels are not literals is an error, so that no family is missed.
func codeMetrics(t testing.TB) map[string]metricFamily {
	t.Helper()
	root := repoRoot(t)
	codeMetricsOnce.Do(func() {
		codeMetricsMap, codeMetricsErr = parseCodeMetrics(root)
	})
	if codeMetricsErr != nil {
		t.Fatal(codeMetricsErr)
	}
	return codeMetricsMap
}

func parseCodeMetrics(root string) (map[string]metricFamily, error) {
	families := map[string]metricFamily{}
	var problems []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		file, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		pkgName := importName(file, "github.com/prometheus/client_golang/prometheus")
		if pkgName == "" {
			return nil
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); !ok || id.Name != pkgName {
				return true
			}
			shape, ok := constructors[sel.Sel.Name]
			if !ok || len(call.Args) == 0 {
				return true
			}
			rel, _ := filepath.Rel(root, fset.Position(call.Pos()).Filename)
			pos := fmt.Sprintf("%s:%d", filepath.ToSlash(rel), fset.Position(call.Pos()).Line)
			f, err := familyFromCall(call, shape.kind, shape.vec)
			if err != nil {
				problems = append(problems, pos+": "+err.Error())
				return true
			}
			f.source = pos
			if prev, dup := families[f.name]; dup {
				problems = append(problems, fmt.Sprintf("%s: metric %s is also defined at %s", pos, f.name, prev.source))
			}
			families[f.name] = f
			return true
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("parse the repository's Go files: %w", err)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("metric definitions the deployment tests cannot read (use literal names and labels):\n%s", strings.Join(problems, "\n"))
	}
	return families, nil
}

// importName returns the name under which file imports path, or "" when it does not.
func importName(file *ast.File, path string) string {
	for _, imp := range file.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil || p != path {
			continue
		}
		if imp.Name != nil {
			return imp.Name.Name
		}
		return filepath.Base(path)
	}
	return ""
}

// familyFromCall reads the metric name (Namespace, Subsystem and Name) from a constructor's options
// literal and, for a Vec, the label names from its second argument.
func familyFromCall(call *ast.CallExpr, kind string, vec bool) (metricFamily, error) {
	f := metricFamily{kind: kind, vec: vec}
	opts, ok := call.Args[0].(*ast.CompositeLit)
	if !ok {
		return f, fmt.Errorf("options of %s are not a composite literal", kind)
	}
	parts := map[string]string{}
	for _, elt := range opts.Elts {
		kv, ok := elt.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		key, ok := kv.Key.(*ast.Ident)
		if !ok || (key.Name != "Name" && key.Name != "Namespace" && key.Name != "Subsystem") {
			continue
		}
		s, err := stringLiteral(kv.Value)
		if err != nil {
			return f, fmt.Errorf("%s of a %s: %w", key.Name, kind, err)
		}
		parts[key.Name] = s
	}
	var name []string
	for _, k := range []string{"Namespace", "Subsystem", "Name"} {
		if parts[k] != "" {
			name = append(name, parts[k])
		}
	}
	f.name = strings.Join(name, "_")
	if parts["Name"] == "" {
		return f, fmt.Errorf("a %s without a Name", kind)
	}
	if vec {
		if len(call.Args) < 2 {
			return f, fmt.Errorf("%s Vec %s without label names", kind, f.name)
		}
		list, ok := call.Args[1].(*ast.CompositeLit)
		if !ok {
			return f, fmt.Errorf("labels of %s are not a []string literal", f.name)
		}
		for _, elt := range list.Elts {
			s, err := stringLiteral(elt)
			if err != nil {
				return f, fmt.Errorf("label of %s: %w", f.name, err)
			}
			f.labels = append(f.labels, s)
		}
	}
	return f, nil
}

func stringLiteral(e ast.Expr) (string, error) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", fmt.Errorf("not a string literal")
	}
	return strconv.Unquote(lit.Value)
}

// runtimeMetrics returns the families of the Go and process collectors that cmd/tisync registers
// next to its own, by gathering them from a registry set up the same way.
func runtimeMetrics(t testing.TB) map[string]metricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather the Go and process collectors: %v", err)
	}
	kinds := map[dto.MetricType]string{
		dto.MetricType_COUNTER:   "counter",
		dto.MetricType_GAUGE:     "gauge",
		dto.MetricType_HISTOGRAM: "histogram",
		dto.MetricType_SUMMARY:   "summary",
		dto.MetricType_UNTYPED:   "untyped",
	}
	families := map[string]metricFamily{}
	for _, mf := range mfs {
		f := metricFamily{name: mf.GetName(), kind: kinds[mf.GetType()], source: "client_golang collectors"}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if !slices.Contains(f.labels, l.GetName()) {
					f.labels = append(f.labels, l.GetName())
				}
			}
		}
		f.vec = len(f.labels) > 0
		families[f.name] = f
	}
	return families
}

// exportedMetrics returns every family that tisync's /metrics can serve: tisync's own and the
// collectors'.
func exportedMetrics(t testing.TB) map[string]metricFamily {
	t.Helper()
	all := runtimeMetrics(t)
	for name, f := range codeMetrics(t) {
		all[name] = f
	}
	return all
}

func TestCodeMetricsFound(t *testing.T) {
	families := codeMetrics(t)

	// A plain text search must find the same tisync_ names as the syntax-tree reading, so that a
	// definition the reader does not understand cannot hide.
	grep := regexp.MustCompile(`Name:\s*"(tisync_[a-z0-9_]+)"`)
	found := map[string]bool{}
	root := repoRoot(t)
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range grep.FindAllSubmatch(data, -1) {
			found[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("search the Go files: %v", err)
	}
	if len(found) < 40 {
		t.Fatalf("found %d tisync_ metric names in the Go files, expected the 50 or so of sync/ and sink/", len(found))
	}
	for name := range found {
		if _, ok := families[name]; !ok {
			t.Errorf("metric %s appears as a Name in the code but no constructor call defines it", name)
		}
	}
	for name, f := range families {
		if strings.HasPrefix(name, "tisync_") && !found[name] {
			t.Errorf("metric %s (%s) was not found by the text search", name, f.source)
		}
		if !strings.HasPrefix(name, "tisync_") {
			t.Errorf("metric %s (%s) does not start with tisync_", name, f.source)
		}
	}
}

func TestRuntimeCollectorsMatchDaemon(t *testing.T) {
	// runtimeMetrics mirrors the registry that cmd/tisync builds; fail when that changes.
	root := string(readRepoFile(t, "cmd/tisync/root.go"))
	for _, want := range []string{"collectors.NewGoCollector()", "collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})"} {
		if !strings.Contains(root, want) {
			t.Errorf("cmd/tisync/root.go no longer registers %s: update runtimeMetrics", want)
		}
	}
	families := runtimeMetrics(t)
	for _, name := range []string{"process_resident_memory_bytes", "process_cpu_seconds_total", "go_goroutines", "go_memstats_heap_inuse_bytes"} {
		if _, ok := families[name]; !ok {
			t.Errorf("the collectors export no %s", name)
		}
	}
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
