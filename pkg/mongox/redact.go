package mongox

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// Mask replaces every secret the redactor removes.
const Mask = "xxxxx"

// secretOptions are the connection-string options whose value is a secret
// (lower case). From the driver's connstring options
// (sslClientCertificateKeyPassword, tlsCertificateKeyFilePassword) and the
// MongoDB URI specification options other drivers accept (proxyPassword).
// authMechanismProperties is handled per property (see safeAuthProperties).
var secretOptions = map[string]bool{
	"tlscertificatekeyfilepassword":   true,
	"sslclientcertificatekeypassword": true,
	"proxypassword":                   true,
}

// secretLooking matches option names that are not in secretOptions but look
// like they hold a secret (an option a future driver adds, a typo): masking a
// harmless value costs less than printing a secret.
var secretLooking = regexp.MustCompile(`(?i)password|secret|token|credential`)

// safeAuthProperties are the authMechanismProperties keys that name things
// rather than hold secrets; every other property value (AWS_SESSION_TOKEN and
// any key the driver adds later) is masked.
var safeAuthProperties = map[string]bool{
	"SERVICE_NAME": true, "SERVICE_REALM": true, "SERVICE_HOST": true,
	"CANONICALIZE_HOST_NAME": true, "ENVIRONMENT": true, "TOKEN_RESOURCE": true,
}

func isSecretOption(key string) bool {
	k := strings.ToLower(key)
	return secretOptions[k] || secretLooking.MatchString(k)
}

// Redact returns uri with its password and the values of its secret-bearing
// options (tlsCertificateKeyFilePassword, authMechanismProperties such as
// AWS_SESSION_TOKEN, ...) replaced by Mask, for logs, errors and progress.
// The URI is checked with the driver's connection-string parser; input it
// cannot parse is still masked after "://user:" and in every option that
// looks secret, so a malformed URI never leaks what it carries.
func Redact(uri string) string {
	if uri == "" {
		return ""
	}
	if _, err := parseNoDNS(uri); err != nil {
		return redactUnparsed(uri)
	}
	scheme, rest, _ := strings.Cut(uri, "://")
	var b strings.Builder
	b.WriteString(scheme + "://")
	// The driver takes the user info up to the first "@" (an "@" inside a
	// password must be escaped).
	if userinfo, after, ok := strings.Cut(rest, "@"); ok {
		user, _, hasPass := strings.Cut(userinfo, ":")
		b.WriteString(user)
		if hasPass {
			b.WriteString(":" + Mask)
		}
		b.WriteString("@")
		rest = after
	}
	base, query, hasQuery := strings.Cut(rest, "?")
	b.WriteString(base)
	if hasQuery {
		b.WriteString("?" + redactQuery(query))
	}
	return b.String()
}

// parseNoDNS parses uri with the driver's parser without the DNS lookups a
// mongodb+srv URI would make: redaction must never touch the network.
func parseNoDNS(uri string) (*connstring.ConnString, error) {
	if rest, ok := strings.CutPrefix(uri, connstring.SchemeMongoDBSRV+"://"); ok {
		uri = connstring.SchemeMongoDB + "://" + rest
	}
	return connstring.Parse(uri)
}

// redactQuery masks secret option values in a raw query string, keeping the
// separators and every other option as written.
func redactQuery(q string) string {
	var b strings.Builder
	start := 0
	for i := 0; i <= len(q); i++ {
		if i < len(q) && q[i] != '&' && q[i] != ';' {
			continue
		}
		b.WriteString(redactOption(q[start:i]))
		if i < len(q) {
			b.WriteByte(q[i])
		}
		start = i + 1
	}
	return b.String()
}

func redactOption(pair string) string {
	rawKey, rawVal, ok := strings.Cut(pair, "=")
	if !ok {
		return pair
	}
	key, err := url.QueryUnescape(rawKey)
	if err != nil {
		key = rawKey
	}
	switch {
	case strings.EqualFold(key, "authMechanismProperties"):
		val, err := url.QueryUnescape(rawVal)
		if err != nil {
			return rawKey + "=" + Mask
		}
		props := strings.Split(val, ",")
		for i, p := range props {
			k, _, _ := strings.Cut(p, ":")
			if !safeAuthProperties[strings.ToUpper(k)] {
				props[i] = k + ":" + Mask
			}
		}
		return rawKey + "=" + strings.Join(props, ",")
	case isSecretOption(key):
		return rawKey + "=" + Mask
	}
	return pair
}

var (
	// userinfoPassword is "://user:password@" in text the parser rejected;
	// greedy up to the last "@" of the token so an unescaped "@" inside the
	// password is masked too.
	userinfoPassword = regexp.MustCompile(`(://[^:@/\s]*:)\S*@`)
	// userinfoNoHost is "://user:password" with no "@" at all (a port,
	// all digits, is left alone).
	userinfoNoHost = regexp.MustCompile(`(://[^:@/\s]*:)([^\s/?]*)`)
	// rawOption is one key=value pair of a query string.
	rawOption = regexp.MustCompile(`([?&;])([^=&;\s]+)=([^&;\s]*)`)
	// uriInText finds MongoDB URIs inside free text (driver errors, logs).
	uriInText = regexp.MustCompile(`mongodb(?:\+srv)?://[^\s"'<>]*`)
)

// redactUnparsed masks what the parser could not structure.
func redactUnparsed(s string) string {
	if userinfoPassword.MatchString(s) {
		s = userinfoPassword.ReplaceAllString(s, "${1}"+Mask+"@")
	} else {
		s = userinfoNoHost.ReplaceAllStringFunc(s, func(m string) string {
			sub := userinfoNoHost.FindStringSubmatch(m)
			if strings.Trim(sub[2], "0123456789") == "" {
				return m
			}
			return sub[1] + Mask
		})
	}
	return rawOption.ReplaceAllStringFunc(s, func(m string) string {
		return m[:1] + redactOption(m[1:])
	})
}

// Secrets returns the secret values a URI carries, as parsed and as written
// (escaped), for scrubbing text that quotes them without the URI around them
// (a driver error naming an option value, say).
func Secrets(uri string) []string {
	var out []string
	add := func(vs ...string) {
		for _, v := range vs {
			if v == "" {
				continue
			}
			out = append(out, v)
			if u, err := url.QueryUnescape(v); err == nil {
				out = append(out, u)
			}
			out = append(out, url.QueryEscape(v), url.PathEscape(v))
		}
	}
	if cs, err := parseNoDNS(uri); err == nil {
		add(cs.Password)
		if cs.SSLClientCertificateKeyPasswordSet && cs.SSLClientCertificateKeyPassword != nil {
			add(cs.SSLClientCertificateKeyPassword())
		}
		for k, v := range cs.AuthMechanismProperties {
			if !safeAuthProperties[strings.ToUpper(k)] {
				add(v)
			}
		}
	}
	// As written, whether or not the parser accepted the URI.
	if _, rest, ok := strings.Cut(uri, "://"); ok {
		if userinfo, _, ok := strings.Cut(rest, "@"); ok {
			if _, pass, ok := strings.Cut(userinfo, ":"); ok {
				add(pass)
			}
		}
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			if _, pass, ok := strings.Cut(rest[:i], ":"); ok {
				add(pass)
			}
		}
	}
	for _, m := range rawOption.FindAllStringSubmatch(uri, -1) {
		key, val := m[2], m[3]
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
		switch {
		case strings.EqualFold(key, "authMechanismProperties"):
			v, err := url.QueryUnescape(val)
			if err != nil {
				add(val)
				continue
			}
			for _, p := range strings.Split(v, ",") {
				if k, pv, ok := strings.Cut(p, ":"); ok && !safeAuthProperties[strings.ToUpper(k)] {
					add(pv)
				}
			}
			add(val)
		case isSecretOption(key):
			add(val)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// minSecretLen is the shortest secret scrubbed from free text by value:
// replacing every "a" in a log line would make it unreadable, and URIs are
// masked structurally anyway.
const minSecretLen = 4

// Redactor removes secrets from text the product prints: every MongoDB URI
// in it (Redact) and every known secret value (URI passwords and secret
// options, the Kafka SASL password, API tokens). The zero value and nil
// redact URIs only. Safe for concurrent use once built.
type Redactor struct {
	secrets []string // longest first, so a secret containing another is masked whole
}

// NewRedactor returns a redactor for the given connection strings (their
// secrets, see Secrets) and other secret values (a SASL password).
func NewRedactor(uris []string, secrets ...string) *Redactor {
	var all []string
	for _, u := range uris {
		all = append(all, Secrets(u)...)
	}
	for _, s := range secrets {
		if s != "" {
			all = append(all, s, url.QueryEscape(s))
		}
	}
	r := &Redactor{}
	for _, s := range all {
		if len(s) >= minSecretLen && !slices.Contains(r.secrets, s) {
			r.secrets = append(r.secrets, s)
		}
	}
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	return r
}

// String returns s with every URI redacted and every known secret masked.
func (r *Redactor) String(s string) string {
	if strings.Contains(s, "://") {
		s = uriInText.ReplaceAllStringFunc(s, func(u string) string {
			// "at mongodb://...: error" — the punctuation after a URI in a
			// sentence is not part of it (nor of a masked value).
			trimmed := strings.TrimRight(u, ".,:;)]}")
			return Redact(trimmed) + u[len(trimmed):]
		})
	}
	if r == nil {
		return s
	}
	for _, sec := range r.secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Mask)
		}
	}
	return s
}

// Error returns err with a redacted message; errors.Is and errors.As still
// see the original chain (whose own text must then not be printed).
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := r.String(msg)
	if red == msg {
		return err
	}
	return &redactedError{msg: red, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Handler wraps h so that every message and attribute is redacted before it
// is written: the last line of defence for a URI or secret inside an error
// that reaches a log line.
func (r *Redactor) Handler(h slog.Handler) slog.Handler {
	return &redactHandler{r: r, next: h}
}

type redactHandler struct {
	r    *Redactor
	next slog.Handler
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = h.attr(a)
	}
	return &redactHandler{r: h.r, next: h.next.WithAttrs(red)}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{r: h.r, next: h.next.WithGroup(name)}
}

func (h *redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, ga := range g {
			red[i] = h.attr(ga)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		// Errors, Stringers and structs are printed by the next handler
		// with %v/%+v; redact that text and log it as a string.
		var s string
		if err, ok := v.Any().(error); ok {
			s = err.Error()
		} else {
			s = fmt.Sprintf("%+v", v.Any())
		}
		if red := h.r.String(s); red != s {
			return slog.String(a.Key, red)
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

var _ error = (*redactedError)(nil)
