{{/* The release's base name: the release name when it holds "logbridge", else <release>-logbridge. */}}
{{- define "logbridge.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "logbridge.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one component (source or sink): pass (list $ "source"). */}}
{{- define "logbridge.selector" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ $.Chart.Name }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The image: repository@digest, else repository:tag with the tag defaulting to appVersion. */}}
{{- define "logbridge.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "logbridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "logbridge.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The settings both connectors share, as environment variables: pass (list $ "SOURCE" "source").
Secrets come from secretKeyRef or mounted files, never literal values.
*/}}
{{- define "logbridge.env" -}}
{{- $ := index . 0 -}}
{{- $p := printf "LOGBRIDGE_%s_" (index . 1) -}}
{{- $role := index . 2 -}}
- name: {{ $p }}CLUSTER0
  valueFrom: {secretKeyRef: {name: {{ required "clusters.existingSecret: name the Secret holding the cluster URIs" $.Values.clusters.existingSecret }}, key: {{ $.Values.clusters.cluster0Key }}}}
- name: {{ $p }}CLUSTER1
  valueFrom: {secretKeyRef: {name: {{ $.Values.clusters.existingSecret }}, key: {{ $.Values.clusters.cluster1Key }}}}
- name: {{ $p }}KAFKA_BROKERS
  value: {{ required "kafka.brokers: give the Kafka bootstrap brokers, e.g. kafka-0.kafka:9092" $.Values.kafka.brokers | quote }}
- name: {{ $p }}TOPIC_PREFIX
  value: {{ $.Values.kafka.topicPrefix | quote }}
- name: {{ $p }}API_TOKEN_FILE
  value: /etc/logbridge/api/{{ $.Values.api.tokenKey }}
- name: {{ $p }}API_PUBLIC_READ
  value: {{ $.Values.api.publicRead | quote }}
- name: {{ $p }}LOG_FORMAT
  value: {{ $.Values.logFormat | quote }}
{{- if $.Values.schemaRegistry.url }}
- name: {{ $p }}SCHEMA_REGISTRY_URL
  value: {{ $.Values.schemaRegistry.url | quote }}
{{- end }}
{{- if $.Values.kafka.tls.enabled }}
- name: {{ $p }}KAFKA_TLS
  value: "true"
{{- if $.Values.kafka.tls.caSecret }}
- name: {{ $p }}KAFKA_TLS_CA_FILE
  value: /etc/logbridge/kafka-ca/{{ $.Values.kafka.tls.caKey }}
{{- end }}
{{- if $.Values.kafka.tls.clientCertSecret }}
- name: {{ $p }}KAFKA_TLS_CERT_FILE
  value: /etc/logbridge/kafka-client/tls.crt
- name: {{ $p }}KAFKA_TLS_KEY_FILE
  value: /etc/logbridge/kafka-client/tls.key
{{- end }}
{{- end }}
{{- with $.Values.kafka.sasl.mechanism }}
{{- $sasl := index $.Values.kafka.sasl $role }}
- name: {{ $p }}KAFKA_SASL_MECHANISM
  value: {{ . | quote }}
- name: {{ $p }}KAFKA_SASL_USER
  value: {{ required (printf "kafka.sasl.%s.user: the %s's SASL user" $role $role) $sasl.user | quote }}
- name: {{ $p }}KAFKA_SASL_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ required (printf "kafka.sasl.%s.existingSecret: the Secret holding the %s's SASL password" $role $role) $sasl.existingSecret }}, key: {{ $sasl.passwordKey }}}}
{{- end }}
{{- end -}}

{{/* Volumes both connectors mount: the API token, Kafka TLS material, a writable /tmp. */}}
{{- define "logbridge.volumes" -}}
- name: api-token
  secret: {secretName: {{ required "api.existingSecret: name the Secret holding the API token" .Values.api.existingSecret }}, defaultMode: 0440}
- name: tmp
  emptyDir: {sizeLimit: 64Mi}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret: {secretName: {{ .Values.kafka.tls.caSecret }}, defaultMode: 0440}
{{- end }}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.clientCertSecret }}
- name: kafka-client
  secret: {secretName: {{ .Values.kafka.tls.clientCertSecret }}, defaultMode: 0440}
{{- end }}
{{- end -}}

{{- define "logbridge.volumeMounts" -}}
- {name: api-token, mountPath: /etc/logbridge/api, readOnly: true}
- {name: tmp, mountPath: /tmp}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.caSecret }}
- {name: kafka-ca, mountPath: /etc/logbridge/kafka-ca, readOnly: true}
{{- end }}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.clientCertSecret }}
- {name: kafka-client, mountPath: /etc/logbridge/kafka-client, readOnly: true}
{{- end }}
{{- end -}}

{{/* Probes: liveness = the process answers (/healthz); readiness = MongoDB, Kafka and the pipeline (/readyz). */}}
{{- define "logbridge.probes" -}}
{{- if .Values.api.publicRead }}
livenessProbe:
  httpGet: {path: /healthz, port: http}
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 10
  timeoutSeconds: 6
  failureThreshold: 3
{{- else }}
livenessProbe:
  tcpSocket: {port: http}
  periodSeconds: 20
readinessProbe:
  tcpSocket: {port: http}
  periodSeconds: 10
{{- end }}
{{- end -}}
