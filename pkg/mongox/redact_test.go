package mongox

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// Each secret is a unique marker, so a test can tell that it is absent
// everywhere, escaped or not.
const (
	mPass    = "PASSmark1"
	mTLSPass = "TLSPASSmark2"
	mSSLPass = "SSLPASSmark3"
	mAWS     = "AWSTOKENmark4"
	mProxy   = "PROXYmark5"
	mOther   = "OTHERmark6"
)

var allMarkers = []string{mPass, mTLSPass, mSSLPass, mAWS, mProxy, mOther}

func TestRedactURIs(t *testing.T) {
	tests := []struct {
		name string
		uri  string
		want string // "" when only the absence of markers is checked
	}{
		{name: "password", uri: "mongodb://u:" + mPass + "@h1:27017,h2:27017/?replicaSet=rs0",
			want: "mongodb://u:xxxxx@h1:27017,h2:27017/?replicaSet=rs0"},
		{name: "no password", uri: "mongodb://u@h1/?authMechanism=MONGODB-X509", want: "mongodb://u@h1/?authMechanism=MONGODB-X509"},
		{name: "no credentials", uri: "mongodb://127.0.0.1:27018/?replicaSet=rs0", want: "mongodb://127.0.0.1:27018/?replicaSet=rs0"},
		{name: "escaped password", uri: "mongodb://u:" + mPass + "%40%3A%2F@h1/db", want: "mongodb://u:xxxxx@h1/db"},
		{name: "tlsCertificateKeyFilePassword", uri: "mongodb://h1/?tls=true&tlsCertificateKeyFile=/k.pem&tlsCertificateKeyFilePassword=" + mTLSPass,
			want: "mongodb://h1/?tls=true&tlsCertificateKeyFile=/k.pem&tlsCertificateKeyFilePassword=xxxxx"},
		{name: "option case", uri: "mongodb://h1/?TLSCERTIFICATEKEYFILEPASSWORD=" + mTLSPass, want: "mongodb://h1/?TLSCERTIFICATEKEYFILEPASSWORD=xxxxx"},
		{name: "sslClientCertificateKeyPassword", uri: "mongodb://h1/?ssl=true&sslClientCertificateKeyFile=/k.pem&sslClientCertificateKeyPassword=" + mSSLPass},
		{name: "aws session token", uri: "mongodb://AKIA:" + mPass + "@h1/?authMechanism=MONGODB-AWS&authSource=$external&authMechanismProperties=AWS_SESSION_TOKEN:" + mAWS,
			want: "mongodb://AKIA:xxxxx@h1/?authMechanism=MONGODB-AWS&authSource=$external&authMechanismProperties=AWS_SESSION_TOKEN:xxxxx"},
		{name: "auth properties escaped", uri: "mongodb://h1/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN%3A" + mAWS + "%2Cx"},
		{name: "safe auth properties kept", uri: "mongodb://u@h1/?authMechanism=GSSAPI&authMechanismProperties=SERVICE_NAME:mongo,CANONICALIZE_HOST_NAME:true",
			want: "mongodb://u@h1/?authMechanism=GSSAPI&authMechanismProperties=SERVICE_NAME:mongo,CANONICALIZE_HOST_NAME:true"},
		{name: "unknown auth property", uri: "mongodb://h1/?authMechanism=MONGODB-OIDC&authMechanismProperties=ENVIRONMENT:azure,NEW_KEY:" + mOther},
		{name: "proxyPassword", uri: "mongodb://h1/?proxyHost=p&proxyUsername=pu&proxyPassword=" + mProxy},
		{name: "secret-looking option", uri: "mongodb://h1/?someFutureToken=" + mOther + "&w=majority"},
		{name: "srv", uri: "mongodb+srv://u:" + mPass + "@cluster0.example.net/?tlsCertificateKeyFilePassword=" + mTLSPass,
			want: "mongodb+srv://u:xxxxx@cluster0.example.net/?tlsCertificateKeyFilePassword=xxxxx"},
		{name: "semicolon separators", uri: "mongodb://h1/?tls=true;tlsCertificateKeyFilePassword=" + mTLSPass + ";w=1",
			want: "mongodb://h1/?tls=true;tlsCertificateKeyFilePassword=xxxxx;w=1"},
		// Unparsable input: the fallback still masks.
		{name: "unescaped at in password", uri: "mongodb://u:" + mPass + "@x@h1/?replicaSet=rs0"},
		{name: "unescaped slash in password", uri: "mongodb://u:" + mPass + "/x@h1/"},
		{name: "bad escape in option", uri: "mongodb://u:" + mPass + "@h1/?tlsCertificateKeyFilePassword=" + mTLSPass + "%zz"},
		{name: "bad scheme", uri: "mongo://u:" + mPass + "@h1/?authMechanismProperties=AWS_SESSION_TOKEN:" + mAWS},
		{name: "no at sign", uri: "mongodb://u:" + mPass},
		{name: "query without slash", uri: "mongodb://u:" + mPass + "@h1?proxyPassword=" + mProxy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Redact(tt.uri)
			for _, m := range allMarkers {
				if strings.Contains(got, m) {
					t.Errorf("Redact(%q) = %q still holds %s", tt.uri, got, m)
				}
			}
			if tt.want != "" && got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if !strings.Contains(got, Mask) && hasMarker(tt.uri) {
				t.Errorf("got %q: no mask for a URI with a secret", got)
			}
		})
	}
}

func hasMarker(s string) bool {
	for _, m := range allMarkers {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

func TestRedactKeepsPortsOfUnparsableURIs(t *testing.T) {
	// Parsable up to the query, but "?" without "/" is refused by the
	// driver: the port must stay readable.
	got := Redact("mongodb://h1:27017?replicaSet=rs0")
	if got != "mongodb://h1:27017?replicaSet=rs0" {
		t.Fatalf("got %q, want the URI unchanged", got)
	}
}

func TestRedactorText(t *testing.T) {
	uri := "mongodb://u:" + mPass + "@h1/?tlsCertificateKeyFilePassword=" + mTLSPass + "&authMechanismProperties=AWS_SESSION_TOKEN:" + mAWS
	r := NewRedactor([]string{uri}, "SASLmark7")
	tests := []struct{ name, in string }{
		{name: "uri in text", in: "dialing " + uri + " failed"},
		{name: "quoted uri", in: `error parsing uri "` + uri + `": bad`},
		{name: "option value alone", in: `invalid option value "` + mTLSPass + `%zz": invalid URL escape`},
		{name: "password alone", in: "auth failed for u with " + mPass},
		{name: "escaped token", in: "token AWSTOKENmark4 and " + "AWS_SESSION_TOKEN%3A" + mAWS},
		{name: "sasl", in: "SASL password SASLmark7 rejected"},
		{name: "other uri in text", in: "got mongodb://x:" + mOther + "@h2/ from the config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := r.String(tt.in)
			if hasMarker(got) || strings.Contains(got, "SASLmark7") {
				t.Errorf("String(%q) = %q still holds a secret", tt.in, got)
			}
		})
	}
	// Punctuation after a URI in a sentence survives the masking.
	if got := r.String("source at mongodb://h/?proxyPassword=" + mProxy + ": refused"); got != "source at mongodb://h/?proxyPassword=xxxxx: refused" {
		t.Errorf("got %q, want the colon after the URI kept", got)
	}
	base := fmt.Errorf("connecting: %w", errors.New("auth with "+mPass))
	err := r.Error(base)
	if strings.Contains(err.Error(), mPass) || !errors.Is(err, base) {
		t.Fatalf("Error: got %q (Is %v), want it redacted and still matching", err, errors.Is(err, base))
	}
	if r.Error(nil) != nil {
		t.Fatal("Error(nil) is not nil")
	}
}

func TestRedactorHandler(t *testing.T) {
	uri := "mongodb://u:" + mPass + "@h1/?proxyPassword=" + mProxy
	var buf bytes.Buffer
	log := slog.New(NewRedactor([]string{uri}, "SASLmark7").Handler(slog.NewJSONHandler(&buf, nil)))
	log = log.With("uri", uri)
	log.Error("failed at "+uri, "err", errors.New("pass "+mPass), "sasl", "SASLmark7",
		slog.Group("g", "inner", mProxy), "any", struct{ P string }{mPass}, "n", 3)
	out := buf.String()
	if hasMarker(out) || strings.Contains(out, "SASLmark7") {
		t.Fatalf("log line holds a secret: %s", out)
	}
	if !strings.Contains(out, `"n":3`) || !strings.Contains(out, "u:xxxxx@h1") {
		t.Fatalf("log line lost its other content: %s", out)
	}
}
