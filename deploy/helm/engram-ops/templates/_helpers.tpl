{{- define "engram-ops.name" -}}{{ .Values.fullnameOverride }}{{- end -}}

{{- define "engram-ops.labels" -}}
app.kubernetes.io/name: {{ include "engram-ops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "engram-ops.selector" -}}
app.kubernetes.io/name: {{ include "engram-ops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "engram-ops.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag }}{{- end -}}

{{/* The S3 settings of the server and of the restore drill. */}}
{{- define "engram-ops.s3env" -}}
- name: ENGRAM_S3_ENDPOINT
  value: {{ .Values.s3.endpoint | quote }}
- name: ENGRAM_S3_REGION
  value: {{ .Values.s3.region | quote }}
- name: ENGRAM_S3_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {name: {{ .Values.existingSecret }}, key: ENGRAM_S3_ACCESS_KEY_ID}
- name: ENGRAM_S3_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ .Values.existingSecret }}, key: ENGRAM_S3_SECRET_ACCESS_KEY}
- name: TMPDIR
  value: /tmp
{{- end -}}

{{- define "engram-ops.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "engram-ops.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
