package mongox

import (
	"strings"
	"testing"
)

func TestValidateURI(t *testing.T) {
	tests := []struct {
		name, uri, want string // want "" accepts
	}{
		{name: "plain", uri: "mongodb://127.0.0.1:27018/?replicaSet=rs0"},
		{name: "credentials", uri: "mongodb://u:p%40ss@h1:27017,h2:27017/admin?authSource=admin&tls=true"},
		{name: "empty", uri: " ", want: "the URI is empty"},
		{name: "scheme", uri: "mongo://h:27017", want: `scheme must be "mongodb" or "mongodb+srv"`},
		{name: "no host", uri: "mongodb://", want: "must have at least 1 host"},
		{name: "bad port", uri: "mongodb://h:99999/", want: "port must be in the range"},
		{name: "bad option value", uri: "mongodb://h/?connectTimeoutMS=soon", want: `invalid value for "connecttimeoutms"`},
		{name: "unescaped at in password", uri: "mongodb://u:p@ss@h/", want: "unescaped @ sign in user info"},
		{name: "conflicting tls", uri: "mongodb://h/?tls=true&ssl=false", want: "tls and ssl options"},
		{name: "srv with port", uri: "mongodb+srv://cluster0.example.com:27017/", want: "not a valid MongoDB connection string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateURI(tc.uri)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want the URI accepted", err)
			case tc.want != "" && (err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want))):
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// A refused URI's error never shows its secrets.
func TestValidateURIHidesSecrets(t *testing.T) {
	for _, uri := range []string{
		"mongodb://alice:s3cr%21t@h:1/?connectTimeoutMS=soon",
		"mongodb://alice:s3cr%21t@h:99999/",
		"mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:s3cr%21t&connectTimeoutMS=x",
		"mongodb://h/?tlsCertificateKeyFilePassword=s3cr%21t&tlsInsecure=maybe",
	} {
		err := ValidateURI(uri)
		if err == nil {
			t.Fatalf("%s: got nil, want an error", uri)
		}
		if strings.Contains(err.Error(), "s3cr") {
			t.Fatalf("%s: the error shows the secret: %v", uri, err)
		}
	}
}
