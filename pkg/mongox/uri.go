package mongox

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// ValidateURI checks a MongoDB connection string with the driver's own
// parser and validator, so that a malformed --cluster0/--source-uri is
// refused at start-up instead of failing every connection attempt later.
// Nothing is dialled; for a mongodb+srv URI the parser looks up its DNS
// records, and a failed lookup is not counted as malformed (DNS may be
// down for a moment; connecting reports it). The error never holds the
// password or a secret-bearing option value.
func ValidateURI(uri string) error {
	if strings.TrimSpace(uri) == "" {
		return errors.New("the URI is empty: give a mongodb:// or mongodb+srv:// connection string")
	}
	_, err := connstring.ParseAndValidate(uri)
	var dnsErr *net.DNSError
	if err == nil || errors.As(err, &dnsErr) {
		return nil
	}
	// The URI itself is not repeated: the caller names the flag, and
	// options may carry secrets that a redaction could miss.
	return fmt.Errorf("not a valid MongoDB connection string: %s (see https://www.mongodb.com/docs/manual/reference/connection-string/)",
		scrubSecrets(uri, err.Error()))
}

// secretOption names the URI options whose values are secrets.
func secretOption(key string) bool {
	k := strings.ToLower(key)
	return strings.Contains(k, "password") || strings.Contains(k, "secret") || strings.Contains(k, "token") ||
		k == "authmechanismproperties"
}

// scrubSecrets replaces, in msg, every secret the URI carries: the
// password and the values of secret-bearing options, raw, unescaped and
// quoted (the driver quotes values in its errors).
func scrubSecrets(uri, msg string) string {
	var secrets []string
	add := func(s string) {
		if s == "" {
			return
		}
		secrets = append(secrets, s)
		if u, err := url.QueryUnescape(s); err == nil {
			secrets = append(secrets, u)
		}
		q := strconv.Quote(s)
		secrets = append(secrets, q[1:len(q)-1])
	}
	rest := uri
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
		if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
			add(pw)
		}
	}
	if _, query, ok := strings.Cut(uri, "?"); ok {
		for _, kv := range strings.FieldsFunc(query, func(r rune) bool { return r == '&' || r == ';' }) {
			k, v, _ := strings.Cut(kv, "=")
			if secretOption(k) {
				add(v)
			}
		}
	}
	for _, s := range secrets {
		if len(s) > 0 {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}
