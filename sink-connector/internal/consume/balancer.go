package consume

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BalancerName is the group protocol name of the namespace-affine balancer.
// Every member of a sink group must use it.
const BalancerName = "logbridge-ns-affine"

// NamespaceBalancer assigns every partition of one topic (one namespace) to
// the same member, so that DDL barriers, which need every partition of the
// namespace to reach them, resolve inside one process. Members spread across
// topics: topics are placed largest first on the least loaded (by partitions)
// subscribed member; a topic stays with its previous owner while that owner
// is not above its fair share. The protocol is eager: a rebalance revokes
// everything first, which is what barriers need (no partition of a namespace
// moves while another still runs elsewhere).
type NamespaceBalancer struct{}

var _ kgo.GroupBalancer = NamespaceBalancer{}
var _ kgo.ConsumerBalancerBalance = NamespaceBalancer{}

// ProtocolName implements kgo.GroupBalancer.
func (NamespaceBalancer) ProtocolName() string { return BalancerName }

// IsCooperative implements kgo.GroupBalancer.
func (NamespaceBalancer) IsCooperative() bool { return false }

// JoinGroupMetadata implements kgo.GroupBalancer; it sends the owned
// partitions so that the leader can keep topics where they are.
func (NamespaceBalancer) JoinGroupMetadata(interests []string, current map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 3
	meta.Topics = interests
	meta.Generation = generation
	topics := make([]string, 0, len(current))
	for t := range current {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		o := kmsg.NewConsumerMemberMetadataOwnedPartition()
		o.Topic = t
		o.Partitions = append([]int32(nil), current[t]...)
		meta.OwnedPartitions = append(meta.OwnedPartitions, o)
	}
	return meta.AppendTo(nil)
}

// ParseSyncAssignment implements kgo.GroupBalancer.
func (NamespaceBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return kgo.ParseConsumerSyncAssignment(assignment)
}

// MemberBalancer implements kgo.GroupBalancer.
func (b NamespaceBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	return cb, cb.MemberTopics(), err
}

// Balance implements kgo.ConsumerBalancerBalance.
func (NamespaceBalancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	plan := cb.NewPlan()
	type member struct {
		m    *kmsg.JoinGroupResponseMember
		subs map[string]bool
		load int
	}
	var members []*member
	owner := map[string]*member{}
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		mb := &member{m: m, subs: map[string]bool{}}
		for _, t := range meta.Topics {
			mb.subs[t] = true
		}
		for _, o := range meta.OwnedPartitions {
			if _, taken := owner[o.Topic]; !taken && len(o.Partitions) > 0 {
				owner[o.Topic] = mb
			}
		}
		members = append(members, mb)
	})
	if len(members) == 0 {
		return plan
	}
	sort.Slice(members, func(i, j int) bool { return members[i].m.MemberID < members[j].m.MemberID })

	var names []string
	total := 0
	for t := range cb.MemberTopics() {
		if n := topics[t]; n > 0 {
			names = append(names, t)
			total += int(n)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if topics[names[i]] != topics[names[j]] {
			return topics[names[i]] > topics[names[j]]
		}
		return names[i] < names[j]
	})
	fair := (total + len(members) - 1) / len(members)
	for _, t := range names {
		n := int(topics[t])
		var pick *member
		if o := owner[t]; o != nil && o.subs[t] && (o.load+n <= fair || o.load == 0) {
			pick = o
		}
		if pick == nil {
			for _, m := range members {
				if m.subs[t] && (pick == nil || m.load < pick.load) {
					pick = m
				}
			}
		}
		if pick == nil {
			continue // nobody subscribes
		}
		parts := make([]int32, n)
		for i := range parts {
			parts[i] = int32(i)
		}
		plan.AddPartitions(pick.m, t, parts)
		pick.load += n
	}
	return plan
}
