package igmp

import (
	"fmt"
	"net/netip"
	"time"
)

// Type is an IGMP message type (RFC 3376 §4, RFC 2236 §2, RFC 1112
// appendix I) or an ICMPv6 type used by MLD (RFC 2710 §3, RFC 3810 §5).
// The two ranges do not overlap, so one Type says which protocol it is.
type Type uint8

const (
	TypeIGMPQuery    Type = 0x11 // all IGMP versions; the length tells v1/v2 (8) from v3 (>= 12)
	TypeIGMPv1Report Type = 0x12
	TypeIGMPv2Report Type = 0x16
	TypeIGMPLeave    Type = 0x17 // IGMPv2 Leave Group
	TypeIGMPv3Report Type = 0x22
	TypeMLDQuery     Type = 130 // both MLD versions; the length tells v1 (24) from v2 (>= 28)
	TypeMLDv1Report  Type = 131
	TypeMLDDone      Type = 132 // MLDv1 Done
	TypeMLDv2Report  Type = 143
)

func (t Type) String() string {
	switch t {
	case TypeIGMPQuery:
		return "igmp-query"
	case TypeIGMPv1Report:
		return "igmpv1-report"
	case TypeIGMPv2Report:
		return "igmpv2-report"
	case TypeIGMPLeave:
		return "igmpv2-leave"
	case TypeIGMPv3Report:
		return "igmpv3-report"
	case TypeMLDQuery:
		return "mld-query"
	case TypeMLDv1Report:
		return "mldv1-report"
	case TypeMLDDone:
		return "mldv1-done"
	case TypeMLDv2Report:
		return "mldv2-report"
	}
	return fmt.Sprintf("type-%d", uint8(t))
}

// IsMLD reports whether t is an MLD (ICMPv6) type.
func (t Type) IsMLD() bool { return t >= TypeMLDQuery }

// RecordType is the type of a group record in an IGMPv3 or MLDv2 report
// (RFC 3376 §4.2.12, RFC 3810 §5.2.12); both use the same numbers.
type RecordType uint8

const (
	ModeIsInclude       RecordType = 1 // IS_IN: current state, in answer to a query
	ModeIsExclude       RecordType = 2 // IS_EX
	ChangeToIncludeMode RecordType = 3 // TO_IN: filter-mode change
	ChangeToExcludeMode RecordType = 4 // TO_EX
	AllowNewSources     RecordType = 5 // ALLOW: source-list change
	BlockOldSources     RecordType = 6 // BLOCK
)

var recordNames = [...]string{"", "IS_IN", "IS_EX", "TO_IN", "TO_EX", "ALLOW", "BLOCK"}

// Known reports whether t is one of the six record types; receivers
// ignore records of any other type (RFC 3376 §4.2.12).
func (t RecordType) Known() bool { return t >= ModeIsInclude && t <= BlockOldSources }

func (t RecordType) String() string {
	if t.Known() {
		return recordNames[t]
	}
	return fmt.Sprintf("record-%d", uint8(t))
}

// Record is one group record of an IGMPv3 or MLDv2 report. Auxiliary data
// is skipped when parsing (RFC 3376 §4.2.10: receivers ignore it).
type Record struct {
	Type    RecordType
	Group   netip.Addr
	Sources []netip.Addr
}

// Message is one IGMP or MLD message, as it is on the wire: codes are kept
// raw so that parsing and encoding round-trip exactly; MaxResp and QQI
// decode them.
type Message struct {
	Type Type
	// Version is the protocol version of the message: IGMP 1..3, MLD 1..2.
	// For queries it comes from the length (and, for IGMP, a zero code
	// meaning v1); for other types from the type.
	Version int
	// Group: queries (unspecified for a general query), v1/v2 reports,
	// leaves and dones. Unset for v3/MLDv2 reports.
	Group netip.Addr
	// MaxRespCode is the raw response field of a query: IGMPv2 1/10 s
	// linear, IGMPv3 8-bit float in 1/10 s, MLDv1 ms linear, MLDv2 16-bit
	// float in ms.
	MaxRespCode uint16
	Suppress    bool         // S flag of a v3/MLDv2 query (RFC 3376 §4.1.5)
	QRV         uint8        // querier's robustness variable, 0..7 (0: unknown, > 7)
	QQIC        uint8        // querier's query interval code
	Sources     []netip.Addr // source list of a v3/MLDv2 query
	Records     []Record     // v3/MLDv2 report
}

// IsQuery reports whether m is a query of either protocol.
func (m *Message) IsQuery() bool { return m.Type == TypeIGMPQuery || m.Type == TypeMLDQuery }

// MaxResp decodes MaxRespCode. IGMPv1 queries carry none; hosts use 10 s
// (RFC 2236 §4), and so does MaxResp.
func (m *Message) MaxResp() time.Duration {
	switch {
	case m.Type == TypeIGMPQuery && m.Version == 1:
		return v1MaxResp
	case m.Type == TypeIGMPQuery && m.Version == 2:
		return time.Duration(m.MaxRespCode) * 100 * time.Millisecond
	case m.Type == TypeIGMPQuery:
		return DecodeIGMPv3Code(uint8(m.MaxRespCode))
	case m.Type == TypeMLDQuery && m.Version == 1:
		return time.Duration(m.MaxRespCode) * time.Millisecond
	case m.Type == TypeMLDQuery:
		return DecodeMLDv2Code(m.MaxRespCode)
	}
	return 0
}

// QQI decodes QQIC (zero for v1/v2 queries and when the querier sent 0).
func (m *Message) QQI() time.Duration { return DecodeQQIC(m.QQIC) }

// v1MaxResp is the response time IGMPv1 hosts use, since v1 queries carry
// none (RFC 1112 appendix I, RFC 2236 §4).
const v1MaxResp = 10 * time.Second

func (m *Message) String() string {
	s := fmt.Sprintf("%v v%d", m.Type, m.Version)
	if m.Group.IsValid() {
		s += " " + m.Group.String()
	}
	if m.IsQuery() {
		s += fmt.Sprintf(" maxresp=%v", m.MaxResp())
		if len(m.Sources) > 0 {
			s += fmt.Sprintf(" sources=%v", m.Sources)
		}
		if m.Suppress {
			s += " S"
		}
	}
	for _, r := range m.Records {
		s += fmt.Sprintf(" %v(%v %v)", r.Type, r.Group, r.Sources)
	}
	return s
}
