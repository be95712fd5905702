package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
)

// buildIDKey is the mapping attribute that carries a pprof mapping's build id (OTel semantic
// conventions name the Go flavour of it so).
const buildIDKey = "process.executable.build_id.go"

// dict fills the request's one ProfilesDictionary. pdata's SetString/SetStack/... search their
// table linearly, far too slow for the large testdata (334k samples), so every table is
// deduplicated here through a Go map instead. Every table starts with a zero entry, so that
// index 0 means "none" as the proto requires of string_table, mapping_table and link_table
// and as pdata's own merge code assumes of mapping_index 0; real entries start at 1.
type dict struct {
	d         pprofile.ProfilesDictionary
	strs      map[string]int32
	stacks    map[string]int32
	attrs     map[string]int32
	byContent map[string]int32 // function, mapping and location -> index, across files

	functions map[uint64]int32 // pprof Function.ID -> index, per file (reset by file)
	mappings  map[uint64]int32 // pprof Mapping.ID -> index, per file
	locations map[uint64]int32 // pprof Location.ID -> index, per file
}

func newDict(d pprofile.ProfilesDictionary) *dict {
	t := &dict{d: d, strs: map[string]int32{}, stacks: map[string]int32{}, attrs: map[string]int32{},
		byContent: map[string]int32{}}
	t.str("")
	d.MappingTable().AppendEmpty()
	d.LocationTable().AppendEmpty()
	d.FunctionTable().AppendEmpty()
	d.LinkTable().AppendEmpty()
	d.AttributeTable().AppendEmpty()
	d.StackTable().AppendEmpty()
	return t
}

func (t *dict) str(s string) int32 {
	if i, ok := t.strs[s]; ok {
		return i
	}
	i := int32(t.d.StringTable().Len())
	t.d.StringTable().Append(s)
	t.strs[s] = i
	return i
}

// attr interns one KeyValueAndUnit: v is a string or an int64.
func (t *dict) attr(key string, v any, unit string) int32 {
	k := fmt.Sprintf("%q %T %v %q", key, v, v, unit)
	if i, ok := t.attrs[k]; ok {
		return i
	}
	a := t.d.AttributeTable().AppendEmpty()
	a.SetKeyStrindex(t.str(key))
	switch v := v.(type) {
	case string:
		a.Value().SetStr(v)
	case int64:
		a.Value().SetInt(v)
	}
	if unit != "" {
		a.SetUnitStrindex(t.str(unit))
	}
	i := int32(t.d.AttributeTable().Len() - 1)
	t.attrs[k] = i
	return i
}

func (t *dict) stack(locs []*profile.Location) int32 {
	var b strings.Builder
	idx := make([]int32, len(locs))
	for i, l := range locs {
		idx[i] = t.locations[l.ID]
		b.WriteString(strconv.Itoa(int(idx[i])))
		b.WriteByte(',')
	}
	if i, ok := t.stacks[b.String()]; ok {
		return i
	}
	t.d.StackTable().AppendEmpty().LocationIndices().FromRaw(idx)
	i := int32(t.d.StackTable().Len() - 1)
	t.stacks[b.String()] = i
	return i
}

// addFile adds the functions, mappings and locations of p, each once: those equal to one of an
// earlier file (the same binary profiled twice) are shared rather than repeated.
func (t *dict) addFile(p *profile.Profile) {
	t.functions, t.mappings, t.locations = map[uint64]int32{}, map[uint64]int32{}, map[uint64]int32{}
	for _, f := range p.Function {
		k := fmt.Sprintf("f %q %q %q %d", f.Name, f.SystemName, f.Filename, f.StartLine)
		if i, ok := t.byContent[k]; ok {
			t.functions[f.ID] = i
			continue
		}
		o := t.d.FunctionTable().AppendEmpty()
		o.SetNameStrindex(t.str(f.Name))
		o.SetSystemNameStrindex(t.str(f.SystemName))
		o.SetFilenameStrindex(t.str(f.Filename))
		o.SetStartLine(f.StartLine)
		t.functions[f.ID] = int32(t.d.FunctionTable().Len() - 1)
		t.byContent[k] = t.functions[f.ID]
	}
	for _, m := range p.Mapping {
		k := fmt.Sprintf("m %d %d %d %q %q", m.Start, m.Limit, m.Offset, m.File, m.BuildID)
		if i, ok := t.byContent[k]; ok {
			t.mappings[m.ID] = i
			continue
		}
		o := t.d.MappingTable().AppendEmpty()
		o.SetMemoryStart(m.Start)
		o.SetMemoryLimit(m.Limit)
		o.SetFileOffset(m.Offset)
		o.SetFilenameStrindex(t.str(m.File))
		if m.BuildID != "" {
			o.AttributeIndices().Append(t.attr(buildIDKey, m.BuildID, ""))
		}
		t.mappings[m.ID] = int32(t.d.MappingTable().Len() - 1)
		t.byContent[k] = t.mappings[m.ID]
	}
	for _, l := range p.Location {
		// the key is in the request's indices, so it equals only what would be encoded the same
		var m int32
		if l.Mapping != nil {
			m = t.mappings[l.Mapping.ID]
		}
		k := fmt.Sprintf("l %d %d", m, l.Address)
		fn := make([]int32, len(l.Line))
		for i, ln := range l.Line {
			if ln.Function != nil {
				fn[i] = t.functions[ln.Function.ID]
			}
			k += fmt.Sprintf(" %d:%d:%d", fn[i], ln.Line, ln.Column)
		}
		if i, ok := t.byContent[k]; ok {
			t.locations[l.ID] = i
			continue
		}
		o := t.d.LocationTable().AppendEmpty()
		o.SetMappingIndex(m)
		o.SetAddress(l.Address)
		for i, ln := range l.Line {
			ol := o.Lines().AppendEmpty()
			ol.SetFunctionIndex(fn[i])
			ol.SetLine(ln.Line)
			ol.SetColumn(ln.Column)
		}
		t.locations[l.ID] = int32(t.d.LocationTable().Len() - 1)
		t.byContent[k] = t.locations[l.ID]
	}
}

// labels interns a sample's pprof labels as attributes, keys sorted so the output is stable;
// a key with several values gives one attribute per value, as pprof has them.
func (t *dict) labels(s *profile.Sample) []int32 {
	var out []int32
	for _, k := range sortedKeys(s.Label) {
		for _, v := range s.Label[k] {
			out = append(out, t.attr(k, v, ""))
		}
	}
	for _, k := range sortedKeys(s.NumLabel) {
		for i, v := range s.NumLabel[k] {
			unit := ""
			if i < len(s.NumUnit[k]) {
				unit = s.NumUnit[k][i]
			}
			out = append(out, t.attr(k, v, unit))
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// addProfiles appends to sp one Profile per sample type of p, in p's order; each holds every
// sample of p (zero values included) with that type's value alone. raw, when not nil, goes
// into original_payload.
func (t *dict) addProfiles(sp pprofile.ScopeProfiles, p *profile.Profile, raw []byte) {
	t.addFile(p)
	// stacks and attributes are the same for every type: intern them once per sample
	stacks := make([]int32, len(p.Sample))
	attrs := make([][]int32, len(p.Sample))
	for i, s := range p.Sample {
		stacks[i] = t.stack(s.Location)
		attrs[i] = t.labels(s)
	}
	for ti, st := range p.SampleType {
		o := sp.Profiles().AppendEmpty()
		o.SampleType().SetTypeStrindex(t.str(st.Type))
		o.SampleType().SetUnitStrindex(t.str(st.Unit))
		o.SetTime(pcommon.Timestamp(p.TimeNanos))
		o.SetDurationNano(uint64(p.DurationNanos))
		if p.PeriodType != nil {
			o.PeriodType().SetTypeStrindex(t.str(p.PeriodType.Type))
			o.PeriodType().SetUnitStrindex(t.str(p.PeriodType.Unit))
		}
		o.SetPeriod(p.Period)
		if raw != nil {
			o.SetOriginalPayloadFormat("pprof")
			o.OriginalPayload().FromRaw(raw)
		}
		o.Samples().EnsureCapacity(len(p.Sample))
		for i, s := range p.Sample {
			so := o.Samples().AppendEmpty()
			so.SetStackIndex(stacks[i])
			so.AttributeIndices().FromRaw(attrs[i])
			so.Values().Append(s.Value[ti])
		}
	}
}
