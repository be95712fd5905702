//go:build tools

// Package tools pins versitygw (github.com/versity/versitygw, Apache-2.0), the S3-compatible
// server the tests run; the Makefile builds its command, `make bin/versitygw`
// (tools/versitygw/README.md). The build tag keeps this file out of every build: it is here
// only so that go.mod keeps the requirement.
package tools

import _ "github.com/versity/versitygw/cmd/versitygw"
