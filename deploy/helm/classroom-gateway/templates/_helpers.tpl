{{- define "gateway.name" -}}classroom-gateway{{- end -}}

{{- define "gateway.fullname" -}}
{{- if contains "classroom-gateway" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-classroom-gateway" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gateway.labels" -}}
{{ include "gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* An environment variable from a literal value or a Secret's key (or nothing). */}}
{{- define "gateway.envFrom" -}}
{{- $name := index . 0 -}}{{- $spec := index . 1 -}}
{{- if $spec.url }}
- name: {{ $name }}
  value: {{ $spec.url | quote }}
{{- else if $spec.secretName }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $spec.secretName }}
      key: {{ $spec.secretKey }}
{{- end }}
{{- end -}}

{{- define "gateway.hasRedis" -}}
{{- if or .Values.redis.url .Values.redis.secretName -}}true{{- end -}}
{{- end -}}
