// Package secrets holds the end-to-end checks of issue 19 items 5-7 against
// the real stack and the real connector binaries:
//
//   - Secrets planted as unique markers in every URI option that carries
//     one (password, tlsCertificateKeyFilePassword,
//     sslClientCertificateKeyPassword, authMechanismProperties
//     AWS_SESSION_TOKEN, proxyPassword) and in the Kafka SASL password
//     (flag, file, environment) appear in no log line, error, progress
//     answer or metric.
//   - A cluster that rejects the credentials (the local server refuses the
//     SCRAM handshake of an unknown user) and a port that refuses
//     connections make the epoch service fail: the supervisor retries with
//     growing, capped delays, and progress and /metrics show the redacted
//     error and the restart count.
//   - Invalid settings (--progress-interval 0, --commit-max-lag -5, a
//     missing --source-uri or --kafka-brokers, ...) exit 2.
//
// The control log is written directly (as the lifecycle test does) so that
// the checks do not depend on the control API's authentication.
package secrets
