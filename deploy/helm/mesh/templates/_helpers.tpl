{{/* Labels every object carries; the selector labels are the app.kubernetes.io/name alone, fixed for a release's life. */}}
{{- define "mesh.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: mesh
{{- end }}

{{- define "mesh.image" -}}
{{ .repository }}:{{ .tag }}
{{- end }}

{{/* The control plane's agent port as agents dial it: the certificate must name this host. */}}
{{- define "mesh.controlPlaneUrl" -}}
{{- .Values.agent.controlPlaneUrl | default (printf "https://mesh-controlplane.%s:%v" .Release.Namespace .Values.controlPlane.ports.grpc) }}
{{- end }}
