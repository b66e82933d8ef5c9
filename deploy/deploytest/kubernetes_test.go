package deploytest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

const kubernetesDir = "deploy/kubernetes"

// kubeObject is one manifest document with its identity.
type kubeObject struct {
	file       string
	apiVersion string
	kind       string
	name       string
	namespace  string
	raw        []byte // the document as YAML
}

// kubeManifests returns every document of every YAML file in deploy/kubernetes except the
// kustomization.
func kubeManifests(t *testing.T) []kubeObject {
	t.Helper()
	var objects []kubeObject
	for _, rel := range deployFiles(t, ".yaml", ".yml") {
		if !strings.HasPrefix(rel, kubernetesDir+"/") || filepath.Base(rel) == "kustomization.yaml" {
			continue
		}
		docs, err := yamlDocuments(readRepoFile(t, rel))
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		for _, doc := range docs {
			var head struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
				Metadata   struct {
					Name      string `yaml:"name"`
					Namespace string `yaml:"namespace"`
				} `yaml:"metadata"`
			}
			if err := doc.Decode(&head); err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			raw, err := yaml.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			objects = append(objects, kubeObject{file: rel, apiVersion: head.APIVersion, kind: head.Kind,
				name: head.Metadata.Name, namespace: head.Metadata.Namespace, raw: raw})
		}
	}
	return objects
}

// decodeStrict decodes a manifest into its API type, rejecting fields the type does not have.
func decodeStrict(t *testing.T, obj kubeObject, into any) {
	t.Helper()
	if err := sigsyaml.UnmarshalStrict(obj.raw, into); err != nil {
		t.Fatalf("%s: %s %s does not match the Kubernetes API: %v", obj.file, obj.kind, obj.name, err)
	}
}

// kubeObjectOf returns the manifest of the given kind and decodes it into into.
func kubeObjectOf(t *testing.T, objects []kubeObject, kind string, into any) kubeObject {
	t.Helper()
	for _, o := range objects {
		if o.kind == kind {
			decodeStrict(t, o, into)
			return o
		}
	}
	t.Fatalf("%s has no %s", kubernetesDir, kind)
	return kubeObject{}
}

func TestKubernetesManifests(t *testing.T) {
	objects := kubeManifests(t)
	apiVersions := map[string]string{
		"ConfigMap":      "v1",
		"Secret":         "v1",
		"Service":        "v1",
		"ServiceAccount": "v1",
		"Deployment":     "apps/v1",
		"ServiceMonitor": "monitoring.coreos.com/v1",
	}
	seen := map[string]bool{}
	for _, o := range objects {
		want, known := apiVersions[o.kind]
		if !known {
			t.Errorf("%s: kind %q is not one this test checks", o.file, o.kind)
			continue
		}
		if o.apiVersion != want {
			t.Errorf("%s: %s apiVersion %q, want %q", o.file, o.kind, o.apiVersion, want)
		}
		if o.name == "" {
			t.Errorf("%s: %s has no metadata.name", o.file, o.kind)
		}
		if o.namespace != "" {
			t.Errorf("%s: %s %s sets namespace %q; the manifests are namespace-agnostic", o.file, o.kind, o.name, o.namespace)
		}
		if seen[o.kind+"/"+o.name] {
			t.Errorf("%s: %s %s is defined twice", o.file, o.kind, o.name)
		}
		seen[o.kind+"/"+o.name] = true

		var into any
		switch o.kind {
		case "ConfigMap":
			into = &corev1.ConfigMap{}
		case "Secret":
			into = &corev1.Secret{}
		case "Service":
			into = &corev1.Service{}
		case "ServiceAccount":
			into = &corev1.ServiceAccount{}
		case "Deployment":
			into = &appsv1.Deployment{}
		case "ServiceMonitor":
			into = &monitoringv1.ServiceMonitor{}
		}
		decodeStrict(t, o, into)
	}
	for kind := range apiVersions {
		if !seen[kind+"/tisync"] && !seen[kind+"/tisync-config"] && !seen[kind+"/tisync-secrets"] {
			t.Errorf("%s has no %s", kubernetesDir, kind)
		}
	}
}

func TestKubernetesDeployment(t *testing.T) {
	objects := kubeManifests(t)
	var d appsv1.Deployment
	kubeObjectOf(t, objects, "Deployment", &d)
	var secret corev1.Secret
	kubeObjectOf(t, objects, "Secret", &secret)
	var cm corev1.ConfigMap
	kubeObjectOf(t, objects, "ConfigMap", &cm)
	var sa corev1.ServiceAccount
	kubeObjectOf(t, objects, "ServiceAccount", &sa)

	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas %v, want 1 by default", d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if pod.ServiceAccountName != sa.Name {
		t.Errorf("serviceAccountName %q, want %q", pod.ServiceAccountName, sa.Name)
	}

	// Security: non-root, no privilege escalation, read-only root, no capabilities.
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("the pod does not run as a non-root user")
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("the container's root filesystem is not read-only")
	}
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("the container allows privilege escalation")
	}
	if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Error("the container does not drop all capabilities")
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[res]; !ok {
			t.Errorf("no %s request", res)
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("no memory limit")
	}

	// Probes use the metrics port and tisync's health paths.
	var port *corev1.ContainerPort
	for i := range c.Ports {
		if c.Ports[i].Name == "http-metrics" {
			port = &c.Ports[i]
		}
	}
	if port == nil || port.ContainerPort != 9464 {
		t.Fatalf("no container port http-metrics 9464: %+v", c.Ports)
	}
	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"startup", c.StartupProbe, "/healthz"},
		{"liveness", c.LivenessProbe, "/healthz"},
		{"readiness", c.ReadinessProbe, "/readyz"},
	}
	for _, p := range probes {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s probe path %q, want %s", p.name, p.probe.HTTPGet.Path, p.path)
		}
		if pp := p.probe.HTTPGet.Port; pp.StrVal != port.Name && int32(pp.IntValue()) != port.ContainerPort {
			t.Errorf("%s probe port %s, want %s", p.name, pp.String(), port.Name)
		}
	}

	// Secrets come from the Secret tisync-secrets, by keys the example Secret has.
	secretEnv := map[string]bool{}
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		if ref.Name != secret.Name || secret.Name != "tisync-secrets" {
			t.Errorf("env %s reads Secret %q, want tisync-secrets", e.Name, ref.Name)
		}
		if _, ok := secret.StringData[ref.Key]; !ok {
			t.Errorf("env %s reads key %q, which %s does not have", e.Name, ref.Key, "secret.example.yaml")
		}
		secretEnv[e.Name] = true
	}
	for _, name := range []string{"TISYNC_TESTINVITE_PRIVATE_KEY", "TISYNC_CLICKHOUSE_PASSWORD"} {
		if !secretEnv[name] {
			t.Errorf("env %s does not come from a secretKeyRef", name)
		}
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "TISYNC_") && e.Value != "" && strings.Contains(e.Name, "PASSWORD") {
			t.Errorf("env %s has a literal value", e.Name)
		}
	}

	// The configuration comes from the ConfigMap, mounted where the args point, and data_dir is
	// on a writable volume.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	cfgVol := volumes["config"]
	if cfgVol.ConfigMap == nil || cfgVol.ConfigMap.Name != cm.Name {
		t.Errorf("volume config is not the ConfigMap %s", cm.Name)
	}
	args := strings.Join(c.Args, " ")
	if want := "run --config " + mounts["config"].MountPath + "/tisync.yaml"; args != want {
		t.Errorf("args %q, want %q", args, want)
	}
	if data := volumes["data"]; data.EmptyDir == nil && data.PersistentVolumeClaim == nil {
		t.Error("volume data is neither an emptyDir nor a PersistentVolumeClaim")
	}
	if m, ok := mounts["data"]; !ok || m.MountPath != "/var/lib/tisync" || m.ReadOnly {
		t.Errorf("data volume mount %+v, want /var/lib/tisync writable (the image's TISYNC_DATA_DIR)", m)
	}

	// The grace period covers a graceful stop: shutdown_timeout for the components and again for
	// the NATS drain.
	effective := kubeConfigCheck(t, cm, c)
	timeout, err := time.ParseDuration(effective["shutdown_timeout"].(string))
	if err != nil {
		t.Fatalf("shutdown_timeout: %v", err)
	}
	grace := pod.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second < timeout+stopMargin {
		t.Errorf("terminationGracePeriodSeconds %v, want at least shutdown_timeout (%s) plus %s", grace, timeout, stopMargin)
	}
}

// kubeConfigCheck runs `tisync config check` on the ConfigMap's tisync.yaml with the container's
// environment, secrets filled with placeholder values, and returns the effective configuration.
func kubeConfigCheck(t *testing.T, cm corev1.ConfigMap, c corev1.Container) map[string]any {
	t.Helper()
	text, ok := cm.Data["tisync.yaml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no tisync.yaml", cm.Name)
	}
	path := filepath.Join(t.TempDir(), "tisync.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TISYNC_DATA_DIR": "/var/lib/tisync"} // set by the image
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "placeholder-" + e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		}
	}
	effective := configCheck(t, path, env)

	var file map[string]any
	if err := yaml.Unmarshal([]byte(text), &file); err != nil {
		t.Fatal(err)
	}
	if _, ok := file["data_dir"]; ok {
		t.Error("tisync.yaml sets data_dir, which the image's TISYNC_DATA_DIR overrides")
	}
	assertSetting(t, effective, "http.listen", "0.0.0.0:9464")
	assertSetting(t, effective, "log.format", "json")
	assertSetting(t, effective, "clickhouse.username", "tisync")
	assertSetting(t, effective, "nats.user", "tisync")
	for _, path := range []string{"publish.stream.replicas", "publish.lease.replicas", "checkpoint.replicas"} {
		assertSetting(t, effective, path, 3)
	}
	if url, _ := lookup(effective, "nats.url"); url == "" || url == nil {
		t.Error("nats.url is empty, which starts an embedded NATS server in every pod")
	}
	return effective
}

func TestKubernetesService(t *testing.T) {
	objects := kubeManifests(t)
	var svc corev1.Service
	kubeObjectOf(t, objects, "Service", &svc)
	var d appsv1.Deployment
	kubeObjectOf(t, objects, "Deployment", &d)
	var sm monitoringv1.ServiceMonitor
	kubeObjectOf(t, objects, "ServiceMonitor", &sm)

	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "http-metrics" || svc.Spec.Ports[0].Port != 9464 {
		t.Errorf("service ports %+v, want http-metrics 9464", svc.Spec.Ports)
	}
	podLabels := d.Spec.Template.Labels
	for k, v := range svc.Spec.Selector {
		if podLabels[k] != v {
			t.Errorf("service selector %s=%s does not match the pods' labels %v", k, v, podLabels)
		}
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if podLabels[k] != v {
			t.Errorf("deployment selector %s=%s does not match its pods' labels", k, v)
		}
	}
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %s=%s does not match the Service's labels %v", k, v, svc.Labels)
		}
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "http-metrics" || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoints %+v, want port http-metrics, path /metrics", sm.Spec.Endpoints)
	}
}

func TestKustomization(t *testing.T) {
	var k struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Resources  []string `yaml:"resources"`
		Images     []struct {
			Name    string `yaml:"name"`
			NewName string `yaml:"newName"`
			NewTag  string `yaml:"newTag"`
		} `yaml:"images"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, kubernetesDir+"/kustomization.yaml"), &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.Kind != "Kustomization" || k.APIVersion != "kustomize.config.k8s.io/v1beta1" {
		t.Errorf("kustomization.yaml: %s %s", k.APIVersion, k.Kind)
	}
	// Every manifest is listed except the example Secret, which holds placeholders, and the
	// ServiceMonitor, which needs the Prometheus Operator's CRDs.
	optional := []string{"secret.example.yaml", "servicemonitor.yaml"}
	entries, err := os.ReadDir(repoPath(t, kubernetesDir))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range entries {
		if e.Name() != "kustomization.yaml" && strings.HasSuffix(e.Name(), ".yaml") && !slices.Contains(optional, e.Name()) {
			want = append(want, e.Name())
		}
	}
	got := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources %v, want %v", got, want)
	}

	var d appsv1.Deployment
	kubeObjectOf(t, kubeManifests(t), "Deployment", &d)
	image := d.Spec.Template.Spec.Containers[0].Image
	if len(k.Images) != 1 || k.Images[0].Name != image || k.Images[0].NewName == "" || k.Images[0].NewTag == "" {
		t.Errorf("kustomization images %+v, want one entry that sets the name and tag of image %q", k.Images, image)
	}
}
