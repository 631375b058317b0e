package igmp

import "errors"

// Stats counts messages and errors since New. It is a plain value: the
// node copies it out of its serial loop to export metrics.
type Stats struct {
	IGMP, MLD FamilyStats
	Errors    ErrorStats // every error Input returned, by kind
}

// FamilyStats counts one protocol's messages.
type FamilyStats struct {
	Received, Sent MessageStats
	// Own counts frames from our own MAC or query address (our queries
	// looped back, e.g. through a bridge in switch mode); they are ignored.
	Own uint64
}

// MessageStats counts messages by kind. Version-indexed arrays use the
// protocol's own numbering: IGMP 1..3, MLD 1..2.
type MessageStats struct {
	GeneralQueries uint64    // Q()
	GroupQueries   uint64    // Q(G): group-specific, multicast-address-specific
	SourceQueries  uint64    // Q(G,S): group-and-source-specific
	Queries        [4]uint64 // all queries by version
	Reports        [4]uint64 // reports by version (MLDv1 reports at [1])
	Leaves         uint64    // IGMPv2 leaves, MLDv1 dones
	Records        uint64    // group records in IGMPv3 and MLDv2 reports
}

// ErrorStats counts Input errors by the sentinel they wrap.
type ErrorStats struct {
	Truncated, Checksum, Malformed, UnknownType, NotLocal, NotIGMP, Limit uint64
}

func (e *ErrorStats) count(err error) {
	switch {
	case errors.Is(err, ErrTruncated):
		e.Truncated++
	case errors.Is(err, ErrChecksum):
		e.Checksum++
	case errors.Is(err, ErrMalformed):
		e.Malformed++
	case errors.Is(err, ErrUnknownType):
		e.UnknownType++
	case errors.Is(err, ErrNotLocal):
		e.NotLocal++
	case errors.Is(err, ErrNotIGMP):
		e.NotIGMP++
	case errors.Is(err, ErrLimit):
		e.Limit++
	}
}

// countQuery adds a query to s, by kind and version.
func (s *MessageStats) countQuery(m *Message) {
	switch {
	case m.Group.IsUnspecified() || !m.Group.IsValid():
		s.GeneralQueries++
	case len(m.Sources) > 0:
		s.SourceQueries++
	default:
		s.GroupQueries++
	}
	s.Queries[m.Version&3]++
}
