package deploytest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"job", "instance"}

// grafanaVariables replaces Grafana's interval variables with durations, so that PromQL's parser
// accepts the expression. Variables inside label values ($job, $instance) need no replacement.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "5m",
	"$__interval", "1m",
	"$__range", "1h",
)

// promqlChecker checks PromQL expressions against the metric families tisync exports.
type promqlChecker struct {
	families map[string]metricFamily
	parser   parser.Parser
	// allowUp accepts Prometheus's synthetic up series, which alerting rules may use.
	allowUp bool
}

func newPromQLChecker(t testing.TB) *promqlChecker {
	t.Helper()
	return &promqlChecker{families: exportedMetrics(t), parser: parser.NewParser(parser.Options{})}
}

// selectorRef is one series selector of an expression, resolved to its family.
type selectorRef struct {
	family metricFamily
	// part is "", "bucket", "sum" or "count": the series of a histogram or summary it selects.
	part string
}

// seriesLabels returns the labels the selected series carry.
func (r selectorRef) seriesLabels() []string {
	out := append(slices.Clone(r.family.labels), targetLabels...)
	if r.part == "bucket" {
		out = append(out, "le")
	}
	if r.family.kind == "summary" && r.part == "" {
		out = append(out, "quantile")
	}
	return out
}

// resolve finds the family of a series name, accounting for the _bucket, _sum and _count series of
// histograms and summaries.
func (c *promqlChecker) resolve(name string) (selectorRef, error) {
	if c.allowUp && name == "up" {
		return selectorRef{family: metricFamily{name: "up", kind: "gauge"}}, nil
	}
	if f, ok := c.families[name]; ok {
		if f.kind == "histogram" {
			return selectorRef{}, fmt.Errorf("%s is a histogram, which has no series of that name: select %s_bucket, %s_sum or %s_count", name, name, name, name)
		}
		return selectorRef{family: f}, nil
	}
	for _, part := range []string{"bucket", "sum", "count"} {
		base, ok := strings.CutSuffix(name, "_"+part)
		if !ok {
			continue
		}
		f, ok := c.families[base]
		if !ok {
			continue
		}
		if f.kind == "histogram" || (f.kind == "summary" && part != "bucket") {
			return selectorRef{family: f, part: part}, nil
		}
	}
	return selectorRef{}, fmt.Errorf("metric %s is not exported by tisync", name)
}

// selectorNames returns the metric names a selector selects: its name, or the alternatives of a
// __name__ matcher such as {__name__=~"a|b"}.
func selectorNames(vs *parser.VectorSelector) ([]string, error) {
	if vs.Name != "" {
		return []string{vs.Name}, nil
	}
	for _, m := range vs.LabelMatchers {
		if m.Name != labels.MetricName {
			continue
		}
		switch m.Type {
		case labels.MatchEqual:
			return []string{m.Value}, nil
		case labels.MatchRegexp:
			names := strings.Split(m.Value, "|")
			for _, n := range names {
				if !regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`).MatchString(n) {
					return nil, fmt.Errorf("__name__ matcher %q is not a list of metric names", m.Value)
				}
			}
			return names, nil
		}
	}
	return nil, fmt.Errorf("selector %s names no metric", vs)
}

// check parses expr and returns every problem: syntax errors, unknown metrics, labels that the
// selected series do not have, counter functions applied to gauges, and histogram_quantile calls
// that drop the le label.
func (c *promqlChecker) check(expr string) []error {
	parsed, err := c.parser.ParseExpr(grafanaVariables.Replace(expr))
	if err != nil {
		return []error{fmt.Errorf("parse: %w", err)}
	}
	var errs []error
	parser.Inspect(parsed, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			errs = append(errs, c.checkSelector(n)...)
		case *parser.AggregateExpr:
			if !n.Without {
				errs = append(errs, c.checkGrouping(n.Op.String()+" by", n.Grouping, n.Expr)...)
			}
		case *parser.BinaryExpr:
			if n.VectorMatching != nil && n.VectorMatching.On {
				errs = append(errs, c.checkGrouping("on", n.VectorMatching.MatchingLabels, n)...)
			}
		case *parser.Call:
			errs = append(errs, c.checkCall(n)...)
		}
		return nil
	})
	return errs
}

func (c *promqlChecker) checkSelector(vs *parser.VectorSelector) []error {
	names, err := selectorNames(vs)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, name := range names {
		ref, err := c.resolve(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		have := ref.seriesLabels()
		for _, m := range vs.LabelMatchers {
			if m.Name != labels.MetricName && !slices.Contains(have, m.Name) {
				errs = append(errs, fmt.Errorf("%s has no label %q (labels: %s)", name, m.Name, strings.Join(have, ", ")))
			}
		}
	}
	return errs
}

// refsIn resolves every selector below node; unknown metrics are reported by checkSelector.
func (c *promqlChecker) refsIn(node parser.Node) []selectorRef {
	var refs []selectorRef
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		names, err := selectorNames(vs)
		if err != nil {
			return nil
		}
		for _, name := range names {
			if ref, err := c.resolve(name); err == nil {
				refs = append(refs, ref)
			}
		}
		return nil
	})
	return refs
}

// checkGrouping reports grouping labels (of by or on) that no series below node carries; clause
// names the clause in messages, such as "sum by".
func (c *promqlChecker) checkGrouping(clause string, grouping []string, node parser.Node) []error {
	refs := c.refsIn(node)
	if len(refs) == 0 {
		return nil
	}
	var available []string
	for _, r := range refs {
		available = append(available, r.seriesLabels()...)
	}
	var errs []error
	for _, l := range grouping {
		if !slices.Contains(available, l) {
			errs = append(errs, fmt.Errorf("%s (%s): no series below has the label %q", clause, strings.Join(grouping, ", "), l))
		}
	}
	return errs
}

// counterFunctions are the functions that only make sense on counters.
var counterFunctions = []string{"rate", "irate", "increase", "resets"}

func (c *promqlChecker) checkCall(call *parser.Call) []error {
	var errs []error
	switch name := call.Func.Name; {
	case slices.Contains(counterFunctions, name):
		for _, ref := range c.refsIn(call) {
			counterLike := ref.family.kind == "counter" || ref.part != ""
			if !counterLike {
				errs = append(errs, fmt.Errorf("%s() of %s, which is a %s, not a counter", name, ref.family.name, ref.family.kind))
			}
		}
	case name == "histogram_quantile":
		if len(call.Args) != 2 {
			return nil
		}
		refs := c.refsIn(call.Args[1])
		hasBucket := false
		for _, r := range refs {
			if r.part == "bucket" {
				hasBucket = true
			} else {
				errs = append(errs, fmt.Errorf("histogram_quantile over %s, which is not a histogram's _bucket series", r.family.name))
			}
		}
		if !hasBucket {
			errs = append(errs, fmt.Errorf("histogram_quantile without a _bucket series"))
		}
		parser.Inspect(call.Args[1], func(n parser.Node, _ []parser.Node) error {
			if agg, ok := n.(*parser.AggregateExpr); ok && !agg.Without && !slices.Contains(agg.Grouping, "le") {
				errs = append(errs, fmt.Errorf("histogram_quantile over %s by (%s), which drops the le label", agg.Op, strings.Join(agg.Grouping, ", ")))
			}
			return nil
		})
	}
	return errs
}

// metricsIn returns the names of the families an expression selects.
func (c *promqlChecker) metricsIn(expr string) []string {
	parsed, err := c.parser.ParseExpr(grafanaVariables.Replace(expr))
	if err != nil {
		return nil
	}
	var names []string
	for _, r := range c.refsIn(parsed) {
		names = append(names, r.family.name)
	}
	return names
}

func TestPromQLCheckerRejects(t *testing.T) {
	c := newPromQLChecker(t)
	cases := []struct {
		name, expr, want string
	}{
		{"unknown metric", `rate(tisync_no_such_metric_total[5m])`, "not exported"},
		{"bare histogram", `tisync_poll_duration_seconds`, "is a histogram"},
		{"unknown label", `tisync_poll_runs_total{result="ok", task="x"}`, `no label "task"`},
		{"grouping label", `sum by (endpoints) (rate(tisync_testinvite_requests_total[5m]))`, `label "endpoints"`},
		{"rate of gauge", `rate(tisync_sink_pending_messages[5m])`, "not a counter"},
		{"quantile without le", `histogram_quantile(0.9, sum by (entity) (rate(tisync_poll_duration_seconds_bucket[5m])))`, "drops the le label"},
		{"quantile of counter", `histogram_quantile(0.9, rate(tisync_poll_runs_total[5m]))`, "not a histogram"},
		{"syntax", `sum(rate(tisync_poll_runs_total[5m])`, "parse"},
		{"name regexp", `{__name__=~"tisync_scheduler_running|tisync_nope"}`, "tisync_nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := c.check(tc.expr)
			if len(errs) == 0 {
				t.Fatalf("check(%s) found no problem, want one containing %q", tc.expr, tc.want)
			}
			joined := fmt.Sprint(errs)
			if !strings.Contains(joined, tc.want) {
				t.Errorf("check(%s) = %v, want a problem containing %q", tc.expr, errs, tc.want)
			}
		})
	}
}

func TestPromQLCheckerAccepts(t *testing.T) {
	c := newPromQLChecker(t)
	for _, expr := range []string{
		`histogram_quantile(0.99, sum by (le, endpoint) (rate(tisync_testinvite_request_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))`,
		`sum by (entity, op) (rate(tisync_poll_changes_total[5m]))`,
		`time() - max by (task, entity) (tisync_poll_last_success_timestamp_seconds)`,
		`rate(tisync_sink_insert_duration_seconds_sum[5m]) / rate(tisync_sink_insert_duration_seconds_count[5m])`,
		`process_resident_memory_bytes{instance=~"$instance"}`,
	} {
		if errs := c.check(expr); len(errs) > 0 {
			t.Errorf("check(%s) = %v, want no problem", expr, errs)
		}
	}
}
