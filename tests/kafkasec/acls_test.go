package kafkasec

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// acl is one least-privilege grant: operations on a resource (prefixed or literal).
type acl struct {
	name     string // how the README names it
	resource string // topic, group, transactional-id
	pattern  kadm.ACLPattern
	value    string
	ops      []kadm.ACLOperation
}

// sourceACLs are the grants of the source-connector's principal in direct mode: its
// topics (data, <prefix>._source_state) under the prefix, created by the connector, and
// its two transactional ids (the second is source-connector's
// publish.SecondTransactionalID). README, "Running against a secured Kafka". DESCRIBE is not listed:
// Kafka implies it from READ, WRITE and CREATE (a test that removed it saw no difference).
func sourceACLs(prefix, txnID string) []acl {
	return []acl{
		{"topics", "topic", kadm.ACLPatternPrefixed, prefix, []kadm.ACLOperation{kadm.OpCreate, kadm.OpWrite, kadm.OpRead}},
		{"transactional id", "transactional-id", kadm.ACLPatternLiteral, txnID, []kadm.ACLOperation{kadm.OpWrite}},
		{"second transactional id", "transactional-id", kadm.ACLPatternLiteral, txnID + "+2", []kadm.ACLOperation{kadm.OpWrite}},
	}
}

// sinkACLs are the grants of the sink-connector's principal in direct mode: read the
// data topics, its consumer group, and (with --error-tolerance all) create and write the
// dead-letter topic.
func sinkACLs(prefix, group string) []acl {
	return []acl{
		{"topics", "topic", kadm.ACLPatternPrefixed, prefix, []kadm.ACLOperation{kadm.OpRead}},
		{"group", "group", kadm.ACLPatternPrefixed, group, []kadm.ACLOperation{kadm.OpRead}},
		{"dead-letter topic", "topic", kadm.ACLPatternLiteral, prefix + "._dlq", []kadm.ACLOperation{kadm.OpCreate, kadm.OpWrite}},
	}
}

// inspectACLs are the grants of logbridge-inspect's principal: it reads partitions
// directly (no consumer group), so READ on the topics is all.
func inspectACLs(prefix string) []acl {
	return []acl{{"topics", "topic", kadm.ACLPatternPrefixed, prefix, []kadm.ACLOperation{kadm.OpRead}}}
}

func (a acl) builder(principal string) *kadm.ACLBuilder {
	b := kadm.NewACLs().Allow("User:" + principal).AllowHosts().ResourcePatternType(a.pattern).Operations(a.ops...)
	switch a.resource {
	case "topic":
		b = b.Topics(a.value)
	case "group":
		b = b.Groups(a.value)
	case "transactional-id":
		b = b.TransactionalIDs(a.value)
	}
	return b
}

// grant creates the ACLs for principal through the super-user admin client and deletes
// them when the test ends, or earlier when the returned function is called.
func grant(t *testing.T, adm *kadm.Client, principal string, acls []acl) (revoke func()) {
	t.Helper()
	ctx := context.Background()
	for _, a := range acls {
		b := a.builder(principal)
		res, err := adm.CreateACLs(ctx, b)
		if err != nil {
			t.Fatalf("creating ACL %s for %s: %v", a.name, principal, err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("creating ACL %s for %s: %v", a.name, principal, r.Err)
			}
		}
	}
	revoke = func() {
		for _, a := range acls {
			// DeleteACLs takes filters; the builder of a grant is a filter matching exactly it.
			_, _ = adm.DeleteACLs(context.Background(), a.builder(principal))
		}
	}
	t.Cleanup(revoke)
	// CreateACLs returns once the controller committed them; the broker's authorizer
	// applies them when it replays the metadata. DescribeACLs is answered from the
	// authorizer, so wait until it shows every grant.
	deadline := time.Now().Add(15 * time.Second)
	for _, a := range acls {
		for {
			res, err := adm.DescribeACLs(ctx, a.builder(principal))
			n := 0
			if err == nil {
				for _, r := range res {
					n += len(r.Described)
				}
			}
			if n >= len(a.ops) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ACL %s for %s not visible on the broker after 15 s (%d of %d operations; %v)", a.name, principal, n, len(a.ops), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return revoke
}
