{{/* The chart's object names: the release name, with "-faiss-operator" unless it contains it. */}}
{{- define "faiss-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "faiss-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "faiss-operator.labels" -}}
{{ include "faiss-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "faiss-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "faiss-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "faiss-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* An environment value: strings as they are, numbers as integers (never 1e+06). */}}
{{- define "faiss-operator.envValue" -}}
{{- if kindIs "string" . -}}{{ . | quote }}{{- else -}}{{ int64 . | toString | quote }}{{- end -}}
{{- end -}}

{{/*
The operator's permissions. Kept equal to deploy/rbac.yaml (the least-privilege ClusterRole the
operator-live tests prove against the code's calls) by tests/ship/test_chart.py: with
watchNamespaces empty, the ClusterRole's rules are the namespaced rules followed by the cluster
rules, exactly as there.
*/}}
{{- define "faiss-operator.namespacedRules" -}}
# The FaissIndex: watched by Kopf (the watch fills the cache a reconcile reads), read fresh
# before a finalizer change, metadata (finalizer, admin annotations) and status patched.
- apiGroups: [faiss.dev]
  resources: [faissindexes]
  verbs: [get, list, watch, patch]
- apiGroups: [faiss.dev]
  resources: [faissindexes/status]
  verbs: [patch]
# Children: build and cleanup Jobs, serving Deployments, the Service and the PDB are
# server-side applied (a patch that needs create too when the object is new) and deleted;
# all are watched (the watches fill the caches a reconcile reads).
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [list, watch, create, patch, delete]
# Pods: build pods (their reports; deleted once recorded, so they pin no claim) and serving
# pods (readiness, why they are missing, IPs for live analysis).
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch, delete]
# The claims a spec mounts (watched): a missing one becomes a condition.
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [list, watch]
# The Secret spec.objectStore names, read by name for the HEAD that gives an s3:// source's
# ETag or version id (a new upload under the same key is a new revision); never listed.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# Events about a FaissIndex (Kopf posts them).
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{- define "faiss-operator.clusterRules" -}}
# Kopf's discovery of resources and namespaces.
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end -}}
