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

{{/* Pod labels beyond the selector: a shard's primaries and followers and
the router carry their component (and shard) so each Service selects its own. */}}
{{- define "engram-ops.extraLabels" -}}
{{- range $k, $v := . }}
{{ $k }}: {{ $v | quote }}
{{- end }}
{{- end -}}

{{/* A server StatefulSet. Arguments (a dict): root (the chart's context),
name, replicas, labels (extra pod labels, may be empty) and args (each
already quoted as YAML). */}}
{{- define "engram-ops.statefulset" -}}
{{- $ := .root -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .name }}
  labels:
    {{- include "engram-ops.labels" $ | nindent 4 }}
    {{- if .labels }}{{ include "engram-ops.extraLabels" .labels | trim | nindent 4 }}{{ end }}
spec:
  serviceName: {{ .name }}
  replicas: {{ .replicas }}
  selector:
    matchLabels:
      {{- include "engram-ops.selector" $ | nindent 6 }}
      {{- if .labels }}{{ include "engram-ops.extraLabels" .labels | trim | nindent 6 }}{{ end }}
  template:
    metadata:
      labels:
        {{- include "engram-ops.selector" $ | nindent 8 }}
        {{- if .labels }}{{ include "engram-ops.extraLabels" .labels | trim | nindent 8 }}{{ end }}
    spec:
      terminationGracePeriodSeconds: {{ $.Values.terminationGracePeriodSeconds }}
      securityContext:
        {{- include "engram-ops.podSecurityContext" $ | nindent 8 }}
      containers:
        - name: engram-ops
          image: {{ include "engram-ops.image" $ | quote }}
          imagePullPolicy: {{ $.Values.image.pullPolicy }}
          args:
            {{- range .args }}
            - {{ . }}
            {{- end }}
          env:
            - name: ENGRAM_LISTEN
              value: "0.0.0.0:{{ $.Values.port }}"
            - name: ENGRAM_DATA_DIR
              value: /data
            - name: ENGRAM_AUTH_MODE
              value: {{ $.Values.authMode | quote }}
            - name: ENGRAM_LOG_FORMAT
              value: json
            - name: ENGRAM_SERVER_MEMORY_LIMIT
              value: {{ $.Values.memoryLimit | quote }}
            {{- include "engram-ops.s3env" $ | nindent 12 }}
            {{- range $k, $v := $.Values.extraEnv }}
            - name: {{ $k }}
              value: {{ $v | quote }}
            {{- end }}
          ports:
            - name: http
              containerPort: {{ $.Values.port }}
              protocol: TCP
          startupProbe:
            httpGet: {path: /health/ready, port: http}
            periodSeconds: 5
            failureThreshold: 60
          livenessProbe:
            httpGet: {path: /health/alive, port: http}
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3
          readinessProbe:
            httpGet: {path: /health/ready, port: http}
            periodSeconds: 5
            timeoutSeconds: 5
            failureThreshold: 2
          resources:
            {{- toYaml $.Values.resources | nindent 12 }}
          securityContext:
            {{- include "engram-ops.containerSecurityContext" $ | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /data
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir: {}
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: ["ReadWriteOnce"]
        {{- with $.Values.persistence.storageClassName }}
        storageClassName: {{ . }}
        {{- end }}
        resources:
          requests:
            storage: {{ $.Values.persistence.size }}
{{- end -}}

{{/* A Service in front of the pods carrying labels (extra pod labels). */}}
{{- define "engram-ops.service" -}}
{{- $ := .root -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  labels:
    {{- include "engram-ops.labels" $ | nindent 4 }}
    {{- if .labels }}{{ include "engram-ops.extraLabels" .labels | trim | nindent 4 }}{{ end }}
spec:
  selector:
    {{- include "engram-ops.selector" $ | nindent 4 }}
    {{- if .labels }}{{ include "engram-ops.extraLabels" .labels | trim | nindent 4 }}{{ end }}
  ports:
    - name: {{ .portName }}
      port: {{ .port }}
      targetPort: {{ .portName }}
      protocol: TCP
{{- end -}}

{{/* A shard's archive (backup.to/<shard>) and Service URLs. */}}
{{- define "engram-ops.shardArchive" -}}{{ trimSuffix "/" .root.Values.backup.to }}/{{ .shard }}{{- end -}}
{{- define "engram-ops.shardURL" -}}http://{{ .name }}.{{ .root.Release.Namespace }}.svc:{{ .root.Values.port }}{{- end -}}
