package deploytest

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

const dashboardFile = "deploy/grafana/tisync-dashboard.json"

// dashboardDatasource is the data source reference every panel and query must use: the templated
// variable, which Grafana also fills from the __inputs entry on import.
const dashboardDatasource = "${DS_PROMETHEUS}"

type grafanaDashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Inputs        []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	Templating struct {
		List []grafanaVariable `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaVariable struct {
	Name       string             `json:"name"`
	Type       string             `json:"type"`
	Query      any                `json:"query"`
	Definition string             `json:"definition"`
	Datasource *grafanaDatasource `json:"datasource"`
}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaPanel struct {
	ID          int                `json:"id"`
	Type        string             `json:"type"`
	Title       string             `json:"title"`
	Description string             `json:"description"`
	Datasource  *grafanaDatasource `json:"datasource"`
	GridPos     struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr       string             `json:"expr"`
		RefID      string             `json:"refId"`
		Datasource *grafanaDatasource `json:"datasource"`
	} `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Thresholds *struct {
				Steps []struct {
					Value *float64 `json:"value"`
				} `json:"steps"`
			} `json:"thresholds"`
			Custom struct {
				ThresholdsStyle *struct {
					Mode string `json:"mode"`
				} `json:"thresholdsStyle"`
			} `json:"custom"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Panels []grafanaPanel `json:"panels"`
}

func loadDashboard(t testing.TB) grafanaDashboard {
	t.Helper()
	var d grafanaDashboard
	if err := json.Unmarshal(readRepoFile(t, dashboardFile), &d); err != nil {
		t.Fatalf("decode %s: %v", dashboardFile, err)
	}
	return d
}

// flatPanels returns the panels of the dashboard, those inside collapsed rows included, without
// the rows themselves.
func flatPanels(panels []grafanaPanel) []grafanaPanel {
	var out []grafanaPanel
	for _, p := range panels {
		if p.Type == "row" {
			out = append(out, flatPanels(p.Panels)...)
			continue
		}
		out = append(out, p)
	}
	return out
}

func TestDashboardStructure(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q and title %q: want both set", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want 36 or newer (Grafana 9 and later)", d.SchemaVersion)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs = %+v: want one Prometheus input DS_PROMETHEUS", d.Inputs)
	}
	var dsVar *grafanaVariable
	for i, v := range d.Templating.List {
		if v.Name == "DS_PROMETHEUS" {
			dsVar = &d.Templating.List[i]
		}
	}
	if dsVar == nil || dsVar.Type != "datasource" || dsVar.Query != "prometheus" {
		t.Errorf("templating has no datasource variable DS_PROMETHEUS of type prometheus: %+v", dsVar)
	}

	ids := map[int]string{}
	type cell struct{ x, y int }
	occupied := map[cell]string{}
	for _, p := range d.Panels {
		for _, q := range append([]grafanaPanel{p}, p.Panels...) {
			if prev, dup := ids[q.ID]; dup {
				t.Errorf("panel id %d is used by %q and %q", q.ID, prev, q.Title)
			}
			ids[q.ID] = q.Title
		}
		g := p.GridPos
		if g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v does not fit the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, taken := occupied[cell{x, y}]; taken {
					t.Errorf("panels %q and %q overlap at column %d, row %d", other, p.Title, x, y)
					goto nextPanel
				}
				occupied[cell{x, y}] = p.Title
			}
		}
	nextPanel:
	}

	panels := flatPanels(d.Panels)
	if len(panels) < 30 {
		t.Errorf("%d panels: want a panel for every metric family that matters", len(panels))
	}
	for _, p := range panels {
		if p.Title == "" || p.Description == "" {
			t.Errorf("panel %d: title %q and description %q: want both", p.ID, p.Title, p.Description)
		}
		if p.Datasource == nil || p.Datasource.UID != dashboardDatasource {
			t.Errorf("panel %q: datasource %+v, want uid %s", p.Title, p.Datasource, dashboardDatasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != dashboardDatasource {
				t.Errorf("panel %q query %s: datasource %+v, want uid %s", p.Title, tg.RefID, tg.Datasource, dashboardDatasource)
			}
			if refs[tg.RefID] {
				t.Errorf("panel %q: refId %s is used twice", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			for _, sel := range []string{`job=~"$job"`, `instance=~"$instance"`} {
				if strings.Contains(tg.Expr, "tisync_") && !strings.Contains(tg.Expr, sel) {
					t.Errorf("panel %q query %s does not filter by %s: %s", p.Title, tg.RefID, sel, tg.Expr)
				}
			}
		}
	}
}

func TestDashboardQueriesUseExportedMetrics(t *testing.T) {
	d := loadDashboard(t)
	c := newPromQLChecker(t)
	used := map[string]bool{}
	for _, p := range flatPanels(d.Panels) {
		for _, tg := range p.Targets {
			for _, err := range c.check(tg.Expr) {
				t.Errorf("panel %q query %s: %v\n  %s", p.Title, tg.RefID, err, tg.Expr)
			}
			for _, name := range c.metricsIn(tg.Expr) {
				used[name] = true
			}
		}
	}

	// The job and instance variables list the series of families without labels, which every
	// tisync process exports from its start, before any poll or event.
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		selector, ok := labelValuesSelector(v.Definition)
		if !ok {
			t.Errorf("variable %s: definition %q is not label_values(selector, label)", v.Name, v.Definition)
			continue
		}
		for _, err := range c.check(selector) {
			t.Errorf("variable %s: %v", v.Name, err)
		}
		for _, name := range c.metricsIn(selector) {
			if f := c.families[name]; f.vec {
				t.Errorf("variable %s lists %s, which has labels and so no series before its first observation", v.Name, name)
			}
		}
		if v.Datasource == nil || v.Datasource.UID != dashboardDatasource {
			t.Errorf("variable %s: datasource %+v, want uid %s", v.Name, v.Datasource, dashboardDatasource)
		}
	}

	// Every family tisync defines has a panel, so that a new metric is not forgotten here.
	for _, name := range sortedKeys(codeMetrics(t)) {
		if !used[name] {
			t.Errorf("no panel shows %s (%s): add one to %s", name, codeMetrics(t)[name].source, dashboardFile)
		}
	}
	for _, name := range []string{"process_resident_memory_bytes", "go_memstats_heap_inuse_bytes"} {
		if !used[name] {
			t.Errorf("no panel shows the process memory metric %s", name)
		}
	}
}

// labelValuesSelector returns the selector of a Grafana label_values(selector, label) query.
func labelValuesSelector(def string) (string, bool) {
	inner, ok := strings.CutPrefix(strings.TrimSpace(def), "label_values(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return "", false
	}
	inner = strings.TrimSuffix(inner, ")")
	i := strings.LastIndex(inner, ",")
	if i < 0 {
		return "", false
	}
	return strings.TrimSpace(inner[:i]), true
}

func TestDashboardCheckpointAgeThreshold(t *testing.T) {
	// The checkpoint age panel draws poll.freshness_bound's default as a threshold line.
	d := loadDashboard(t)
	for _, p := range flatPanels(d.Panels) {
		uses := false
		for _, tg := range p.Targets {
			if strings.Contains(tg.Expr, "tisync_checkpoint_age_seconds") {
				uses = true
			}
		}
		if !uses || p.Type != "timeseries" {
			continue
		}
		style := p.FieldConfig.Defaults.Custom.ThresholdsStyle
		if style == nil || style.Mode == "off" {
			t.Errorf("panel %q shows checkpoint ages without a threshold line", p.Title)
		}
		th := p.FieldConfig.Defaults.Thresholds
		if th == nil || !slices.ContainsFunc(th.Steps, func(s struct {
			Value *float64 `json:"value"`
		}) bool {
			return s.Value != nil && *s.Value == 1800
		}) {
			t.Errorf("panel %q: no threshold at 1800 s, the default poll.freshness_bound", p.Title)
		}
		return
	}
	t.Error("no time series panel shows tisync_checkpoint_age_seconds")
}

const rulesFile = "deploy/prometheus/tisync-rules.yaml"

func TestAlertRules(t *testing.T) {
	groups, errs := rulefmt.ParseFile(repoPath(t, rulesFile), false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("%s: %v", rulesFile, err)
	}
	if groups == nil {
		t.Fatalf("%s: no rule groups", rulesFile)
	}
	c := newPromQLChecker(t)
	c.allowUp = true
	alerts := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			for _, err := range c.check(r.Expr) {
				t.Errorf("alert %s: %v\n  %s", r.Alert, err, r.Expr)
			}
			sev := r.Labels["severity"]
			if sev != "critical" && sev != "warning" {
				t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s needs a summary and a description", r.Alert)
			}
		}
	}
	for _, want := range []string{"TisyncDown", "TisyncCheckpointStale", "TisyncDeadLetters", "TisyncMassDeleteGuardTripped", "TisyncSinkBacklog"} {
		if !alerts[want] {
			t.Errorf("%s has no alert %s", rulesFile, want)
		}
	}
}
