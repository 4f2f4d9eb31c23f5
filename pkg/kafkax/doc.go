// Package kafkax holds the Kafka settings and helpers both connectors share:
// connection flags (brokers, TLS, SASL PLAIN/SCRAM), client options for franz-go,
// topic creation and checking, and the transient-error classifier.
//
//	var kc kafkax.Config
//	kc.RegisterFlags(fs)
//	… config.Parse(fs, …) …
//	opts, err := kc.ClientOpts()
//	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics("x"))...)
package kafkax
