package app

import "errors"

// Sentinel errors; match them with errors.Is. Errors of the adapters keep
// their own sentinels (mongox.ErrNotReplicaSet, mongox.ErrUnreachable,
// publish.ErrKafkaUnreachable, publish.ErrNotAuthorized, publish.ErrFenced,
// capture.ErrHistoryLost) and are wrapped with the action that failed.
var (
	// ErrSourcePrivileges: the source user may not read what the connector needs.
	ErrSourcePrivileges = errors.New("the source user lacks privileges: it needs to list databases and collections, read every included collection and open a cluster-wide change stream " +
		"(the built-in roles readAnyDatabase and clusterMonitor cover this; appendOplogNote needs clusterManager but is optional)")
	// ErrInvalidConfig: the configuration does not validate.
	ErrInvalidConfig = errors.New("invalid configuration")
)
