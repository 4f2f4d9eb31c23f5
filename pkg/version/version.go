package version

import (
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"github.com/logbridge/logbridge/schema"
)

// Set at link time with -ldflags -X (see the package documentation); empty
// in an unstamped build.
var (
	version        string
	commit         string
	forcedMetadata string
)

// pseudoVersion matches the suffix of a Go pseudo-version
// (v0.0.0-20261206034500-bd3001544084), which names a commit, not a release.
var pseudoVersion = regexp.MustCompile(`\d{14}-[0-9a-f]{12}$`)

//go:embed VERSION
var treeVersion string

// CurrentMetadata is the metadata version this tree writes. 1 is what the
// unversioned builds before 0.1.0 wrote (only the source state's meta record
// said so); 2 (0.1.0) stamps every persisted record with its version and
// keeps a version document on the destination. Raise it with every change
// to a persisted format, and describe the change in docs/versioning.md.
const CurrentMetadata = 2

// Info describes a build. It is what --version prints, what the start-up
// log line carries, the "build" object of /api/v1/progress and the labels
// of the logbridge_build_info metric.
type Info struct {
	// Version is the product's semantic version (X.Y.Z).
	Version string `json:"version"`
	// Commit is the git commit the binary was built from ("unknown" when
	// neither stamped nor recorded), with "-dirty" for uncommitted changes.
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	// RecordContract is the released envelope version of the records it
	// writes (schema.ContractVersion).
	RecordContract string `json:"recordContract"`
	// Metadata is the version of the formats it persists (Metadata()).
	Metadata int `json:"metadataVersion"`
}

var (
	once sync.Once
	info Info
	meta int
)

func load() {
	meta = CurrentMetadata
	if forcedMetadata != "" {
		n, err := strconv.Atoi(forcedMetadata)
		if err != nil || n < 1 || n > CurrentMetadata {
			// A build-time mistake, not a user's: refuse to run at all.
			panic(fmt.Sprintf("pkg/version: forcedMetadata %q must be a number from 1 to %d", forcedMetadata, CurrentMetadata))
		}
		meta = n
	}
	info = Info{
		Version:        strings.TrimSpace(treeVersion),
		Commit:         commit,
		GoVersion:      runtime.Version(),
		RecordContract: schema.ContractVersion,
		Metadata:       meta,
	}
	bi, haveBI := debug.ReadBuildInfo()
	switch {
	case version != "":
		info.Version = strings.TrimPrefix(version, "v")
	case haveBI && strings.HasPrefix(bi.Main.Version, "v") && !pseudoVersion.MatchString(bi.Main.Version):
		// go install github.com/logbridge/logbridge/...@v0.1.0: the module
		// version is the release (a pseudo-version is not).
		info.Version = strings.TrimPrefix(bi.Main.Version, "v")
	}
	if info.Commit == "" {
		info.Commit = "unknown"
		if haveBI {
			var rev, modified string
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value
				}
			}
			if rev != "" {
				info.Commit = rev
				if modified == "true" {
					info.Commit += "-dirty"
				}
			}
		}
	}
}

// Get returns the build's description.
func Get() Info {
	once.Do(load)
	return info
}

// Metadata is the metadata version this binary writes and the highest it
// reads: CurrentMetadata, unless the build forced an older one.
func Metadata() int {
	once.Do(load)
	return meta
}

// String is the --version text.
func (i Info) String() string {
	return fmt.Sprintf("logbridge %s\ncommit:          %s\ngo:              %s\nrecord contract: %s\nmetadata:        %d\n",
		i.Version, i.Commit, i.GoVersion, i.RecordContract, i.Metadata)
}

// LogAttrs are the start-up log line's attributes.
func (i Info) LogAttrs() []any {
	return []any{"version", i.Version, "commit", i.Commit, "go", i.GoVersion,
		"recordContract", i.RecordContract, "metadataVersion", i.Metadata}
}

// LogStart logs the start-up line every service writes first, as
// mongosync logs its version at start-up.
func LogStart(log *slog.Logger, name string) {
	log.Info(name+" starting", Get().LogAttrs()...)
}

// RegisterFlag lists --version in fs's --help. The flag itself is answered
// by Requested before the settings are parsed, so its parsed value is not
// used.
func RegisterFlag(fs *flag.FlagSet) {
	fs.Bool("version", false, "print the version (product, commit, Go, record contract, metadata version) and exit")
}

// Requested reports whether args ask for the version (--version or
// -version, before any "--"). Binaries check it before their settings are
// parsed and validated, so that --version works without any other flag, as
// it does for mongosync.
func Requested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "--version", "-version", "--version=true", "-version=true":
			return true
		}
	}
	return false
}

// Print writes the --version text to w.
func Print(w io.Writer) { fmt.Fprint(w, Get().String()) }

// ErrNewerFormat is wrapped by every error of a reader that met a format
// newer than it understands.
var ErrNewerFormat = errors.New("written in a newer format than this binary reads")

// NewerFormatError is the error for a record of format version found in
// what (e.g. `control event at offset 12 of "shop._control"`); todo says
// what the user does about it. The message names both versions.
func NewerFormatError(what string, found int, todo string) error {
	i := Get()
	return fmt.Errorf("%s: %w: it has metadata version %d, this binary (logbridge %s) reads up to %d; %s",
		what, ErrNewerFormat, found, i.Version, i.Metadata, todo)
}

// CheckRead returns nil when a record of metadata version v (0: written
// before records carried one, i.e. 1) is readable by this binary, and a
// NewerFormatError otherwise.
func CheckRead(what string, v int, todo string) error {
	if v == 0 {
		v = 1
	}
	if v > Metadata() {
		return NewerFormatError(what, v, todo)
	}
	return nil
}

// UpgradeAdvice is the usual todo of a NewerFormatError: a newer logbridge
// wrote this, so run that one (or newer) again; a downgrade across a
// metadata change needs a new sync.
const UpgradeAdvice = "a newer logbridge release wrote it: run that release (or a newer one) again; downgrading across a metadata version change is not supported, start a new sync (a new --topic-prefix) to use this release (docs/versioning.md)"
