// Package version is what a logbridge binary says about itself: the
// product's semantic version, the commit it was built from, the Go version,
// the record-contract version (schema.ContractVersion) and the metadata
// version of everything logbridge persists (the source state topic, the
// control log, the destination's __logbridge database). docs/versioning.md
// states the compatibility policy these numbers carry.
//
// The version comes from the file VERSION next to this package (embedded,
// so that every build of a tree knows it) unless the build stamps another
// with -ldflags; the commit is stamped the same way, or read from the
// module's build information (vcs.revision, "-dirty" when vcs.modified),
// which the go command records when it builds inside a git checkout:
//
//	go build -ldflags "-X github.com/logbridge/logbridge/pkg/version.version=0.1.0 \
//	                   -X github.com/logbridge/logbridge/pkg/version.commit=$(git rev-parse HEAD)" ./...
//
// (make build and make release do exactly that.)
//
// Metadata is the one number readers of persisted formats compare against:
// every record logbridge persists carries the metadata version of the
// binary that wrote it, and a reader that meets a larger number than its
// own stops with NewerFormatError instead of misreading. The upgrade test
// builds an "older" binary from the same tree with
//
//	-ldflags "-X github.com/logbridge/logbridge/pkg/version.forcedMetadata=1"
//
// which lowers Metadata (never raises it) so that an upgrade and a refused
// downgrade across a metadata change can be exercised with one release.
//
//	fmt.Print(version.Get().String())                          // --version
//	log.Info("starting", version.Get().LogAttrs()...)         // start-up line
package version
