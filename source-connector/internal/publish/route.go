package publish

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/logbridge/logbridge/schema"
)

// DefaultRoute is the default topic template: the Kafka Connect convention.
const DefaultRoute = "{prefix}.{db}.{coll}"

// maxTopicLen is Kafka's limit on topic names.
const maxTopicLen = 249

// Router maps namespaces to topic names.
type Router struct {
	prefix, template string
	// topics caches Topic per namespace: it runs for every record, and
	// building the name each time cost 40% of the snapshot's CPU.
	topics sync.Map // schema.Namespace → string
}

// NewRouter checks the prefix and template. The template must contain {db}
// and {coll}: DDL barriers are per namespace topic.
func NewRouter(prefix, template string) (*Router, error) {
	if template == "" {
		template = DefaultRoute
	}
	if prefix == "" {
		return nil, errors.New("topic-prefix is empty")
	}
	if s := sanitize(prefix); s != prefix {
		return nil, fmt.Errorf("topic-prefix %q has characters Kafka does not allow in topic names (use letters, digits, '.', '_', '-')", prefix)
	}
	if !strings.Contains(template, "{db}") || !strings.Contains(template, "{coll}") {
		return nil, fmt.Errorf("topic-route %q must contain {db} and {coll} (one topic per namespace), e.g. %s", template, DefaultRoute)
	}
	return &Router{prefix: prefix, template: template}, nil
}

// Topic is the data topic of ns. Characters Kafka does not allow become '_';
// names over 249 bytes are shortened with a hash suffix.
func (r *Router) Topic(ns schema.Namespace) string {
	if t, ok := r.topics.Load(ns); ok {
		return t.(string)
	}
	t := r.topic(ns)
	r.topics.Store(ns, t)
	return t
}

func (r *Router) topic(ns schema.Namespace) string {
	t := strings.NewReplacer("{prefix}", r.prefix, "{db}", ns.DB, "{coll}", ns.Coll).Replace(r.template)
	t = sanitize(t)
	if len(t) > maxTopicLen {
		sum := sha1.Sum([]byte(t))
		t = t[:maxTopicLen-13] + "-" + hex.EncodeToString(sum[:6])
	}
	return t
}

// StateTopic is the compacted source-state topic.
func (r *Router) StateTopic() string { return r.prefix + "._source_state" }

// ControlTopic is the control event log (written by the control API).
func (r *Router) ControlTopic() string { return r.prefix + "._control" }

// Prefix is the topic prefix.
func (r *Router) Prefix() string { return r.prefix }

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			b[i] = '_'
		}
	}
	return string(b)
}
