// Package version is the project's stand-in for the part of github.com/hashicorp/go-version that
// go.opentelemetry.io/collector/featuregate uses (tools/third_party/README.md): a version
// "[v]MAJOR.MINOR.PATCH[-PRERELEASE]", printed and ordered.
package version

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is one parsed version.
type Version struct {
	seg [3]uint64
	pre string
}

// NewVersion parses s ("v1.2.3", "0.165.0", "1.2.3-rc.1"); fewer than three numbers mean zeros.
func NewVersion(s string) (*Version, error) {
	t := strings.TrimPrefix(strings.TrimSpace(s), "v")
	core, pre, _ := strings.Cut(t, "-")
	parts := strings.Split(core, ".")
	if core == "" || len(parts) > 3 {
		return nil, fmt.Errorf("malformed version: %q", s)
	}
	v := &Version{pre: pre}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("malformed version: %q", s)
		}
		v.seg[i] = n
	}
	for _, c := range pre {
		if !(c == '-' || c == '.' || c == '~' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return nil, fmt.Errorf("malformed version: %q", s)
		}
	}
	return v, nil
}

// String is the version without a leading "v".
func (v *Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.seg[0], v.seg[1], v.seg[2])
	if v.pre != "" {
		s += "-" + v.pre
	}
	return s
}

// Compare is -1, 0 or 1 as v is before, equal to or after o (a prerelease before its release).
func (v *Version) Compare(o *Version) int {
	for i := range v.seg {
		if v.seg[i] != o.seg[i] {
			if v.seg[i] < o.seg[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case v.pre == o.pre:
		return 0
	case v.pre == "":
		return 1
	case o.pre == "":
		return -1
	case v.pre < o.pre:
		return -1
	}
	return 1
}

// LessThan says whether v is before o.
func (v *Version) LessThan(o *Version) bool { return v.Compare(o) < 0 }

// GreaterThan says whether v is after o.
func (v *Version) GreaterThan(o *Version) bool { return v.Compare(o) > 0 }

// Equal says whether v and o are the same version.
func (v *Version) Equal(o *Version) bool { return v.Compare(o) == 0 }
