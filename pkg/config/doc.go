// Package config loads a service's settings from command-line flags, environment
// variables and an optional YAML file, in that order of precedence.
//
// Every setting is a flag registered on a flag.FlagSet; there is exactly one name
// per setting. The environment variable for flag "kafka-brokers" with prefix
// "LOGBRIDGE_SOURCE" is LOGBRIDGE_SOURCE_KAFKA_BROKERS. The file (given with
// --config, or the <PREFIX>_CONFIG variable) is a flat YAML map from flag names
// to values; lists are written as YAML sequences or comma-separated strings.
//
//	fs := flag.NewFlagSet("source-connector", flag.ContinueOnError)
//	brokers := fs.String("kafka-brokers", "127.0.0.1:9092", "…")
//	if err := config.Parse(fs, "LOGBRIDGE_SOURCE", os.Args[1:]); err != nil { … }
package config
