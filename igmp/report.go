package igmp

// Reports, leaves and dones: the way into the table of group.go.

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// handle dispatches a message from another node of the link.
func (f *family) handle(now time.Time, src netip.Addr, m *Message) error {
	switch m.Type {
	case TypeIGMPQuery, TypeMLDQuery:
		f.heardQuery(now, src, m)
		return nil
	case TypeIGMPLeave, TypeMLDDone:
		f.stats.Received.Leaves++
		return f.leave(now, m.Group)
	case TypeIGMPv3Report, TypeMLDv2Report:
		f.stats.Received.Reports[m.Version]++
		f.stats.Received.Records += uint64(len(m.Records))
		var errs []error
		for _, rec := range m.Records {
			if err := f.record(now, src, rec); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	// IGMPv1/v2 and MLDv1 reports.
	f.stats.Received.Reports[m.Version]++
	return f.oldReport(now, src, m.Group, m.Version)
}

// ignored reports whether a group never takes part in membership: the
// all-systems and all-nodes groups, which every host is always in and never
// reports (RFC 3376 §5, RFC 3810 §6), and IPv6 scopes 0 (reserved) and 1
// (interface-local), for which MLD is never sent (RFC 3810 §6).
func ignored(g netip.Addr) bool {
	if g.Is4() {
		return g == allSystems
	}
	return g.As16()[1]&0x0f <= 1 || g == allNodes
}

// oldReport handles an IGMPv1/v2 or MLDv1 report: it starts the older host
// present timer, which puts the group in compatibility mode, and counts as
// IS_EX({}) (RFC 3376 §7.3.2, RFC 3810 §8.3.2).
func (f *family) oldReport(now time.Time, src, grp netip.Addr, version int) error {
	if ignored(grp) {
		return nil
	}
	g := f.groups[grp]
	if g == nil {
		var err error
		if g, err = f.newGroup(grp); err != nil {
			return fmt.Errorf("%w: %d groups, report for %v", err, maxGroups, grp)
		}
	}
	if version < f.version {
		g.hostPresent[version] = now.Add(f.gmi(version))
	}
	g.lastReporter = src
	g.apply(now, ModeIsExclude, nil)
	return nil
}

// leave handles an IGMPv2 leave or MLDv1 done: TO_IN({}), except that a
// group in IGMPv1 compatibility mode (and an IGMPv1 querier) ignores leaves
// (RFC 3376 §7.3.1, §7.3.2): a v1 host still in the group would not answer
// the group-specific query and would be cut off.
func (f *family) leave(now time.Time, grp netip.Addr) error {
	g := f.groups[grp]
	if g == nil || f.ignoresLeaves(g.compat(now)) {
		return nil
	}
	g.apply(now, ChangeToIncludeMode, nil)
	g.sendPending(now)
	return nil
}

func (f *family) ignoresLeaves(compat int) bool { return !f.v6 && compat == 1 }

// record handles one group record of an IGMPv3 or MLDv2 report.
func (f *family) record(now time.Time, src netip.Addr, rec Record) error {
	if !rec.Type.Known() || ignored(rec.Group) {
		return nil // RFC 3376 §4.2.12: unknown record types are ignored
	}
	typ, b := rec.Type, sortedSet(rec.Sources)
	g := f.groups[rec.Group]
	compat := f.version
	if g != nil {
		compat = g.compat(now)
	}
	switch {
	case f.version < f.topVersion():
		// An IGMPv2 or MLDv1 querier cannot ask about sources, so a v3
		// report (sent before the host heard our queries) counts only as
		// what a v2 host would have said: member or not.
		var ok bool
		if typ, ok = f.asOldReport(typ, b, compat); !ok {
			return nil
		}
		b = nil
	case compat < f.version:
		// RFC 3376 §7.3.2, RFC 3810 §8.3.2: while older hosts are
		// present, BLOCK is ignored and TO_EX loses its sources, or the
		// older hosts' traffic could be blocked.
		if typ == BlockOldSources {
			return nil
		}
		if typ == ChangeToExcludeMode {
			b = nil
		}
	}
	if g == nil {
		// A record that leaves INCLUDE{} as it is makes no state.
		if typ == BlockOldSources || len(b) == 0 && (typ == ModeIsInclude || typ == AllowNewSources || typ == ChangeToIncludeMode) {
			return nil
		}
		var err error
		if g, err = f.newGroup(rec.Group); err != nil {
			return fmt.Errorf("%w: %d groups, report for %v", err, maxGroups, rec.Group)
		}
	}
	added := 0
	for _, a := range b {
		if g.sources[a] == nil {
			added++
		}
	}
	if len(g.sources)+added > maxSources {
		f.r.markDirty(g) // so a group made just now is deleted again
		return fmt.Errorf("%w: %d sources for %v", ErrLimit, maxSources, rec.Group)
	}
	g.lastReporter = src
	g.apply(now, typ, b)
	g.sendPending(now)
	return nil
}

// asOldReport maps a v3 record to the v2 message a host in that state
// would send: any record that leaves the host a member is a report
// (IS_EX{}), TO_IN({}) is a leave, the rest says nothing.
func (f *family) asOldReport(typ RecordType, b []netip.Addr, compat int) (RecordType, bool) {
	switch {
	case typ == ModeIsExclude || typ == ChangeToExcludeMode:
		return ModeIsExclude, true
	case len(b) > 0 && (typ == ModeIsInclude || typ == AllowNewSources || typ == ChangeToIncludeMode):
		return ModeIsExclude, true
	case typ == ChangeToIncludeMode && !f.ignoresLeaves(compat):
		return ChangeToIncludeMode, true
	}
	return 0, false
}
