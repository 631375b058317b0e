package igmp

import "errors"

// Every error Input, New and the parsers return wraps one of these, so the
// caller can count bad input by kind (Stats does the same) without parsing
// messages. None of them is fatal: the Router's state is unchanged by the
// frame that caused it.
var (
	// ErrConfig: New was given a Config it cannot run with.
	ErrConfig = errors.New("igmp: invalid config")
	// ErrTruncated: a length field points past the end of the data.
	ErrTruncated = errors.New("igmp: truncated")
	// ErrChecksum: the IPv4 header, IGMP or ICMPv6 checksum is wrong.
	ErrChecksum = errors.New("igmp: bad checksum")
	// ErrMalformed: well-formed lengths but impossible contents (a report
	// for a unicast group, a fragment, an IGMP query of 9..11 bytes).
	ErrMalformed = errors.New("igmp: malformed")
	// ErrUnknownType: an IGMP or ICMPv6 type this package does not handle
	// (DVMRP, mtrace, NDP...). RFC 3376 §4 says to ignore them silently;
	// they are reported so the caller can count them.
	ErrUnknownType = errors.New("igmp: unknown message type")
	// ErrNotLocal: a message that cannot come from this link: TTL or hop
	// limit other than 1, an MLD message without Router Alert, or an MLD
	// query from a source that is not link-local (RFC 3810 §5, §6.2).
	ErrNotLocal = errors.New("igmp: not a link-local control message")
	// ErrNotIGMP: the frame carries neither IGMP nor MLD.
	ErrNotIGMP = errors.New("igmp: frame carries neither IGMP nor MLD")
	// ErrLimit: the report would grow the table past maxGroups groups or
	// maxSources sources per group; the record was ignored.
	ErrLimit = errors.New("igmp: table limit reached")
)
