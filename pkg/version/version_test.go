package version

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/logbridge/logbridge/schema"
)

func TestTreeVersionIsSemantic(t *testing.T) {
	v := Get().Version
	if !regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$`).MatchString(v) {
		t.Fatalf("version %q is not a semantic version X.Y.Z (pkg/version/VERSION)", v)
	}
}

func TestInfo(t *testing.T) {
	i := Get()
	if i.RecordContract != schema.ContractVersion || i.Metadata != CurrentMetadata || i.GoVersion == "" || i.Commit == "" {
		t.Fatalf("got %+v", i)
	}
	out := i.String()
	for _, want := range []string{"logbridge " + i.Version, "commit:", i.GoVersion, "record contract: " + schema.ContractVersion, "metadata:        2"} {
		if !strings.Contains(out, want) {
			t.Errorf("--version text lacks %q:\n%s", want, out)
		}
	}
}

func TestRequested(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want bool
	}{
		{"double dash", []string{"--version"}, true},
		{"single dash", []string{"-version"}, true},
		{"among flags", []string{"--kafka-brokers", "k:9092", "--version"}, true},
		{"explicit true", []string{"--version=true"}, true},
		{"absent", []string{"--kafka-brokers", "k:9092"}, false},
		{"after --", []string{"--", "--version"}, false},
		{"a value, not the flag", []string{"--topic-prefix", "version"}, false},
	} {
		if got := Requested(tc.args); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCheckRead(t *testing.T) {
	for _, v := range []int{0, 1, CurrentMetadata} {
		if err := CheckRead("record", v, UpgradeAdvice); err != nil {
			t.Errorf("version %d: %v, want readable", v, err)
		}
	}
	err := CheckRead(`control event at offset 7 of "p._control"`, CurrentMetadata+1, UpgradeAdvice)
	if !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("newer version: got %v, want ErrNewerFormat", err)
	}
	for _, want := range []string{"offset 7", "metadata version 3", "reads up to 2", "logbridge " + Get().Version, "newer logbridge release"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
}
