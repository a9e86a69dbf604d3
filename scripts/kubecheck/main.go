// kubecheck decodes rendered Kubernetes manifests strictly into the real API
// types (k8s.io/api, and prometheus-operator's for ServiceMonitor), offline:
// an unknown or duplicated field, a wrong type or an unknown kind is an
// error. The chart tests pipe `helm template` output through it.
//
//	helm template ... | kubecheck            # checks stdin
//	kubecheck a.yaml b.yaml                  # checks files
//	kubecheck -extract ConfigMap/NAME/KEY a.yaml   # prints one data entry
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// newObject returns an empty object of the API type for apiVersion/kind.
func newObject(apiVersion, kind string) (any, bool) {
	switch apiVersion + "/" + kind {
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1/Service":
		return &corev1.Service{}, true
	case "v1/Secret":
		return &corev1.Secret{}, true
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, true
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, true
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, true
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, true
	}
	return nil, false
}

// splitDocs splits a YAML stream at `---` lines, dropping empty documents.
func splitDocs(stream []byte) [][]byte {
	var docs [][]byte
	for _, part := range bytes.Split(append([]byte("\n"), stream...), []byte("\n---")) {
		// A separator line may carry a comment (`--- # Source: ...`).
		if i := bytes.IndexByte(part, '\n'); i >= 0 && strings.TrimSpace(string(part[:i])) != "" && strings.HasPrefix(strings.TrimSpace(string(part[:i])), "#") {
			part = part[i:]
		}
		empty := true
		for _, line := range strings.Split(string(part), "\n") {
			t := strings.TrimSpace(line)
			if t != "" && !strings.HasPrefix(t, "#") {
				empty = false
				break
			}
		}
		if !empty {
			docs = append(docs, part)
		}
	}
	return docs
}

func check(name string, stream []byte) (int, []string) {
	var errs []string
	docs := splitDocs(stream)
	for i, doc := range docs {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			errs = append(errs, fmt.Sprintf("%s: document %d: not YAML: %v", name, i+1, err))
			continue
		}
		where := fmt.Sprintf("%s: %s %s/%s", name, head.APIVersion, head.Kind, head.Metadata.Name)
		obj, ok := newObject(head.APIVersion, head.Kind)
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: unknown apiVersion/kind", where))
			continue
		}
		if head.Metadata.Name == "" {
			errs = append(errs, fmt.Sprintf("%s: metadata.name is empty", where))
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", where, err))
		}
	}
	return len(docs), errs
}

// extract prints data[key] of the ConfigMap kind/name in the files.
func extract(what string, paths []string) {
	parts := strings.SplitN(what, "/", 3)
	if len(parts) != 3 || parts[0] != "ConfigMap" {
		fmt.Fprintln(os.Stderr, "kubecheck: -extract takes ConfigMap/NAME/KEY")
		os.Exit(2)
	}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kubecheck:", err)
			os.Exit(2)
		}
		for _, doc := range splitDocs(b) {
			var cm corev1.ConfigMap
			if yaml.Unmarshal(doc, &cm) != nil || cm.Kind != "ConfigMap" || cm.Name != parts[1] {
				continue
			}
			if v, ok := cm.Data[parts[2]]; ok {
				fmt.Print(v)
				return
			}
		}
	}
	fmt.Fprintf(os.Stderr, "kubecheck: no %s in %v\n", what, paths)
	os.Exit(1)
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "-extract" {
		extract(os.Args[2], os.Args[3:])
		return
	}
	inputs := map[string][]byte{}
	var order []string
	if len(os.Args) < 2 {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kubecheck: reading stdin:", err)
			os.Exit(2)
		}
		inputs["<stdin>"] = b
		order = append(order, "<stdin>")
	}
	for _, path := range os.Args[1:] {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kubecheck:", err)
			os.Exit(2)
		}
		inputs[path] = b
		order = append(order, path)
	}
	total, failed := 0, 0
	for _, name := range order {
		n, errs := check(name, inputs[name])
		total += n
		for _, e := range errs {
			fmt.Fprintln(os.Stderr, "kubecheck:", e)
		}
		failed += len(errs)
	}
	if total == 0 {
		fmt.Fprintln(os.Stderr, "kubecheck: no manifests in the input")
		os.Exit(1)
	}
	if failed > 0 {
		os.Exit(1)
	}
	fmt.Printf("kubecheck: %d manifests decode strictly\n", total)
}
